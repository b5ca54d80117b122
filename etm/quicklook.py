"""Quicklook PNGs of published COGs: a fixed colour scale per product, NaN transparent."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # no display: files only

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from rasterio.enums import Resampling  # noqa: E402

from etm.plan import Period  # noqa: E402
from etm.products import PRODUCTS, colour_scale  # noqa: E402

#: Longest side of the map in a quicklook, in pixels.
MAP_PIXELS = 800


def preview(cog: str, longest: int = MAP_PIXELS) -> np.ndarray:
    """A COG's pixels, averaged down so that the longest side is at most ``longest``.

    GDAL reads the overview closest in size, so this never reads the full resolution of a
    large mosaic.
    """
    with rasterio.open(cog) as source:
        factor = max(1, math.ceil(max(source.width, source.height) / longest))
        shape = (math.ceil(source.height / factor), math.ceil(source.width / factor))
        return source.read(1, out_shape=shape, resampling=Resampling.average, masked=False)


def render(cog: str, png: str, *, product: str, period: str, aggregation: str | None) -> None:
    """Write a quicklook of a COG: fixed colour scale and legend in mm, NaN transparent.

    Parameters
    ----------
    cog : str
        A published COG.
    png : str
        Where to write the PNG.
    product : str
        Its product, for the colour map and scale.
    period : str
        ``YYYYMM`` or ``YYYY``, for the title.
    aggregation : {"sum", "mean"} or None
        How a year was made from its months (a yearly sum gets a 12 times larger scale);
        None for a month.
    """
    values = preview(cog)
    vmin, vmax = colour_scale(product, annual=aggregation)
    colours = plt.get_cmap(PRODUCTS[product].colormap).copy()
    colours.set_bad(alpha=0.0)
    span = Period.parse(period)
    when = span.label if span.is_month else f"{span.label}, {aggregation} of 12 months"
    height, width = values.shape
    figure, axes = plt.subplots(figsize=(width / 100 + 1.5, height / 100 + 0.6), dpi=100)
    image = axes.imshow(np.ma.masked_invalid(values), cmap=colours, vmin=vmin, vmax=vmax)
    axes.set_axis_off()
    axes.set_title(f"{PRODUCTS[product].title}, {when}", fontsize=9)
    bar = figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02, extend="max")
    bar.set_label("mm")
    figure.savefig(png, transparent=True, bbox_inches="tight")
    plt.close(figure)
