"""Load a year of a product's region months with stackstac, on the COGs' own grid.

Usage: .venv/bin/python examples/stackstac_year.py OUTPUT_PREFIX [--product etasw]
       [--year 2020]

stackstac 0.5 reads the grid from `proj:epsg`, which pystac drops when it reads an Item:
it is given the Items' JSON as they are, the lines of the Collection's `items.ndjson`
(every href absolute). `snap_bounds=False` keeps the model's lattice, which is not on
multiples of the pixel size (stackstac snaps to those by default, a resampling).
"""

from __future__ import annotations

import argparse
import json

import stackstac
import xarray


# --8<-- [start:load]
def load_year(prefix: str, product: str, year: int) -> xarray.DataArray:
    """The product's months of a year (time, y, x), in mm, NaN where none."""
    with open(f"{prefix}/{product}-monthly/items.ndjson") as lines:
        items = [json.loads(line) for line in lines]
    items = [item for item in items if item["properties"]["datetime"].startswith(str(year))]
    stacked = stackstac.stack(items, assets=["data"], snap_bounds=False)
    return stacked.sel(band="data").sortby("time")


# --8<-- [end:load]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("prefix", help="the output prefix (a folder)")
    parser.add_argument("--product", default="etasw")
    parser.add_argument("--year", type=int, default=2020)
    args = parser.parse_args()
    months = load_year(args.prefix, args.product, args.year).compute()
    print(f"{months.sizes['time']} months of {args.product} {args.year} on {months.attrs['crs']}, "
          f"mean {float(months.mean()):.1f} mm per month")  # fmt: skip


if __name__ == "__main__":
    main()
