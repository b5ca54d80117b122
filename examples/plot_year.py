"""Load a year of a product's region months from the published STAC catalog with odc-stac,
and plot its twelve months and their sum to a PNG.

Usage: .venv/bin/python examples/plot_year.py OUTPUT_PREFIX [--product etasw] [--year 2020]
       [--out etasw_2020.png]

OUTPUT_PREFIX is the folder `enduser_cog_output` names (after `make demo`,
sample/ws-enduser/USA/demo). The months are loaded on the COGs' own grid, read from the
first COG: no resampling.
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")  # no display needed: the figure goes to a file

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import odc.stac  # noqa: E402
import pystac  # noqa: E402
import rasterio  # noqa: E402
import xarray  # noqa: E402
from odc.geo.geobox import GeoBox  # noqa: E402


# --8<-- [start:load]
def load_year(prefix: str, product: str, year: int) -> xarray.DataArray:
    """The product's months of a year (time, latitude, longitude), in mm, NaN where none."""
    collection = pystac.Collection.from_file(f"{prefix}/{product}-monthly/collection.json")
    items = [item for item in collection.get_items() if item.datetime.year == year]
    if not items:
        raise SystemExit(f"no month of {product} in {year} under {prefix}")
    # The COGs' own grid (CRS, pixel size, corner), so that odc-stac does not resample.
    with rasterio.open(items[0].assets["data"].get_absolute_href()) as cog:
        grid = GeoBox(cog.shape, cog.transform, cog.crs.to_string())
    loaded = odc.stac.load(items, bands=["data"], geobox=grid)
    return loaded["data"].sortby("time")


# --8<-- [end:load]


def plot(months: xarray.DataArray, product: str, year: int, out: str) -> None:
    """Twelve small maps on one colour scale, then the year's sum."""
    figure, axes = plt.subplots(4, 4, figsize=(13, 9), layout="constrained")
    for ax in axes.flat:
        ax.set_axis_off()
    top = float(np.nanpercentile(months.values, 99))
    for ax, month in zip(axes.flat, months, strict=False):
        shown = ax.imshow(month.values, vmin=0, vmax=top, cmap="viridis")
        ax.set_title(str(month.time.dt.strftime("%Y-%m").item()))
    figure.colorbar(shown, ax=axes[:3, :], label=f"{product}, mm per month", shrink=0.6)
    total = months.sum("time", skipna=False)  # NaN where any month has no value
    summed = axes[3, 0].imshow(total.values, cmap="magma")
    axes[3, 0].set_title(f"{year}, sum of the months")
    figure.colorbar(summed, ax=axes[3, 0], label="mm")
    figure.savefig(out, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("prefix", help="the output prefix (a folder)")
    parser.add_argument("--product", default="etasw")
    parser.add_argument("--year", type=int, default=2020)
    parser.add_argument("--out", help="the PNG to write (default: PRODUCT_YEAR.png)")
    args = parser.parse_args()
    out = args.out or f"{args.product}_{args.year}.png"
    months = load_year(args.prefix, args.product, args.year)
    plot(months, args.product, args.year, out)
    print(f"{out}: {months.sizes['time']} months of {args.product} {args.year}, "
          f"{months.sizes['latitude']} x {months.sizes['longitude']} pixels, "
          f"mean {float(months.mean()):.1f} mm per month")  # fmt: skip


if __name__ == "__main__":
    main()
