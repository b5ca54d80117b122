"""Quicklook PNGs of the region's COGs: one colour scale per product and kind (months or
years) fitted over the archive, NaN transparent, longitudes and latitudes on the axes, the
tiles outlined."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence

import matplotlib
import numpy as np
import rasterio
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator
from PIL import Image
from rasterio.coords import BoundingBox
from rasterio.enums import Resampling

from etm import s3
from etm.files import whole
from etm.plan import Period
from etm.products import PRODUCTS
from etm.publish import SOURCES_DIGEST

log = logging.getLogger(__name__)

#: Longest side of the map in a quicklook, in pixels.
MAP_PIXELS = 800

#: Longest side of the sample of a COG's pixels that a colour scale is fitted to.
SAMPLE_PIXELS = 256

#: Top of a fitted colour scale: this percentile of the archive's pixels, rounded up.
SCALE_PERCENTILE = 99.0

#: The round tops of a colour scale, times a power of 10.
NICE_STEPS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def preview(cog: str, longest: int = MAP_PIXELS) -> np.ndarray:
    """A COG's pixels, averaged down so that the longest side is at most ``longest``.

    GDAL reads the overview closest in size, so this never reads the full resolution of a
    large mosaic.
    """
    with rasterio.open(cog) as source:
        factor = max(1, math.ceil(max(source.width, source.height) / longest))
        shape = (math.ceil(source.height / factor), math.ceil(source.width / factor))
        return source.read(1, out_shape=shape, resampling=Resampling.average, masked=False)


def nice_ceiling(value: float) -> float:
    """The smallest round number (:data:`NICE_STEPS` times a power of 10) at least
    ``value``: 1159 gives 1500, 212 gives 250; 0 or less gives 1."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(
        round(step * power, 10) for step in NICE_STEPS if step * power >= value * (1 - 1e-12)
    )


def overview_values(cog: str, longest: int = SAMPLE_PIXELS) -> np.ndarray:
    """A COG's valid pixels, averaged down so that the longest side is at most ``longest``
    (GDAL reads the overview closest in size): a cheap sample of its values, NaN and
    nodata left out, as float32 (a product's every period is held at once)."""
    with rasterio.open(cog) as source:
        factor = max(1, math.ceil(max(source.width, source.height) / longest))
        shape = (math.ceil(source.height / factor), math.ceil(source.width / factor))
        values = source.read(1, out_shape=shape, masked=True, resampling=Resampling.average)
    values = values.astype("float32").filled(np.nan)
    return values[np.isfinite(values)]


def fitted_scale(samples: Sequence[np.ndarray], percentile: float = SCALE_PERCENTILE) -> float:
    """The top of a colour scale fitted to a product's kind (its months, or its years) over
    the archive: the ``percentile`` of all their pixels, rounded up by
    :func:`nice_ceiling`; so one scale for every period of the kind, and months compare.

    Parameters
    ----------
    samples : sequence of numpy.ndarray
        Each period's valid pixels (:func:`overview_values`), in mm.
    percentile : float
        Of the pooled pixels; a high one, so that a few extreme pixels do not wash the map
        out (they show in the colour bar's arrow).
    """
    pooled = np.concatenate([np.ravel(s) for s in samples]) if samples else np.empty(0)
    pooled = pooled[np.isfinite(pooled)]
    return nice_ceiling(float(np.percentile(pooled, percentile)) if pooled.size else 0.0)


def degrees(value: float, positive: str, negative: str) -> str:
    """A graticule label: ``110°W``, ``42°N``."""
    return f"{abs(value):g}°{positive if value >= 0 else negative}"


def draw(
    values: np.ndarray, bounds: BoundingBox, outlines: list[BoundingBox], *, product: str,
    title: str, scale: tuple[float, float],
) -> Figure:  # fmt: skip
    """The quicklook's figure: the map on its longitudes and latitudes, each tile outlined,
    and a legend in mm."""
    colours = matplotlib.colormaps[PRODUCTS[product].colormap].with_extremes(bad=(0, 0, 0, 0))
    height, width = values.shape
    # A Figure of its own, not pyplot's: region jobs draw in threads of one process.
    figure = Figure(figsize=(width / 100 + 1.9, height / 100 + 0.9), dpi=100)
    axes = figure.subplots()
    extent = (bounds.left, bounds.right, bounds.bottom, bounds.top)
    image = axes.imshow(
        np.ma.masked_invalid(values), cmap=colours, vmin=scale[0], vmax=scale[1], extent=extent
    )
    for tile in outlines:
        axes.add_patch(Rectangle(
            (tile.left, tile.bottom), tile.right - tile.left, tile.top - tile.bottom,
            fill=False, edgecolor="0.2", linewidth=0.8,
        ))  # fmt: skip
    for axis, (positive, negative) in ((axes.xaxis, "EW"), (axes.yaxis, "NS")):
        axis.set_major_locator(MaxNLocator(steps=[1, 2, 5, 10]))  # whole degrees, mostly
        axis.set_major_formatter(
            FuncFormatter(lambda v, _, p=positive, n=negative: degrees(v, p, n))
        )
    axes.tick_params(labelsize=7)
    axes.grid(color="0.4", linewidth=0.4, alpha=0.5)
    axes.set_title(title, fontsize=9)
    bar = figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02, extend="max")
    bar.set_label("mm")
    return figure


#: PNG text keys of what a quicklook was drawn with: the top of its scale, in mm, and its
#: COG's sources digest (``ETM_SOURCES_DIGEST``, :mod:`etm.publish`).
SCALE_KEY, DIGEST_KEY = "etm:scale_max", "etm:sources_digest"


def drawn_with(png: str) -> tuple[str, str] | None:
    """The (top of scale, COG digest) a quicklook records, or None if there is none."""
    if not os.path.exists(png):
        return None
    try:
        with Image.open(png) as picture:
            text = getattr(picture, "text", {})
    except (OSError, SyntaxError):  # a broken file: drawn again
        return None
    if SCALE_KEY not in text:
        return None
    return text[SCALE_KEY], text.get(DIGEST_KEY, "")


def render(
    cog: str, png: str, *, product: str, period: str, aggregation: str | None,
    scale_max: float, outlines: Sequence[BoundingBox] = (), digest: str = "",
) -> None:  # fmt: skip
    """Write a quicklook of a COG, whole or not at all: colour scale from 0 to
    ``scale_max`` and legend in mm, NaN transparent.

    Parameters
    ----------
    cog : str
        A published COG.
    png : str
        Where to write the PNG; it records ``scale_max`` and ``digest`` (:func:`drawn_with`).
    product : str
        Its product, for the colour map.
    period : str
        ``YYYYMM`` or ``YYYY``, for the title.
    aggregation : {"sum", "mean"} or None
        How a year was made from its months, for the title; None for a month.
    scale_max : float
        Top of the colour scale (:func:`fitted_scale`), in mm.
    outlines : sequence of BoundingBox
        The region's tiles, outlined on the map.
    digest : str
        The COG's sources digest, recorded.
    """
    span = Period.parse(period)
    when = span.label if span.is_month else f"{span.label}, {aggregation} of 12 months"
    with rasterio.open(cog) as source:
        bounds = source.bounds
    figure = draw(
        preview(cog), bounds, list(outlines), product=product,
        title=f"{PRODUCTS[product].title}, {when}", scale=(0.0, scale_max),
    )  # fmt: skip
    metadata = {SCALE_KEY: f"{scale_max:g}", DIGEST_KEY: digest}
    with whole(png) as partial:
        figure.savefig(
            partial, format="png", transparent=True, bbox_inches="tight", metadata=metadata
        )


def _fetch(path: str, png: str, using) -> None:
    """A kept quicklook (``bucket/key``) copied to ``png``, if there is one."""
    data = s3.read(path, missing_ok=True, using=using)
    if data is not None:
        os.makedirs(os.path.dirname(png) or ".", exist_ok=True)
        with whole(png) as partial, open(partial, "wb") as stream:
            stream.write(data)


def _digest(cog: str) -> str:
    with rasterio.open(cog) as source:
        return source.tags().get(SOURCES_DIGEST, "")


def render_all(
    *, cogs: Sequence[str], pngs: Sequence[str], products: Sequence[str],
    periods: Sequence[str], aggregations: Sequence[str | None], tiles: Sequence[str],
    kept: Sequence[str] | None = None,
) -> None:  # fmt: skip
    """Draw the region's quicklooks, one colour scale per product and kind (its months, or
    its years) fitted over the archive (:func:`fitted_scale`), so that months compare.

    A quicklook is drawn again only when its scale or its COG changed (or it is missing);
    the others are touched, so that Snakemake finds them newer than every COG.

    Parameters
    ----------
    cogs, pngs, products, periods, aggregations : sequence
        Each region period's COG (local, or ``s3://``), quicklook (local), product,
        ``YYYYMM`` or ``YYYY`` and aggregation (None for a month), in the same order.
    tiles : sequence of str
        The COGs of the region's tiles in one period, for their outlines.
    kept : sequence of str, optional
        On S3, where a copy of each quicklook is kept (``bucket/key``,
        :data:`etm.plan.KEPT_QUICKLOOKS`): Snakemake deletes the published ones before this
        job, so one still right is read from its copy (a GET, cheaper than drawing it
        again); one drawn is copied there.
    """
    using = s3.client() if kept else None
    with rasterio.Env(**s3.gdal_options()):
        outlines = []
        for tile in tiles:
            with rasterio.open(tile) as source:
                outlines.append(source.bounds)
        kinds: dict[tuple[str, bool], list[int]] = {}
        for index, (product, period) in enumerate(zip(products, periods, strict=True)):
            kinds.setdefault((product, Period.parse(period).is_month), []).append(index)
        for (product, is_month), indexes in kinds.items():
            scale_max = fitted_scale([overview_values(cogs[i]) for i in indexes])
            log.info(
                "%s, %s: colour scale 0 to %g mm", product, "months" if is_month else "years",
                scale_max,
            )  # fmt: skip
            for i in indexes:
                digest = _digest(cogs[i])
                if kept and not os.path.exists(pngs[i]):
                    _fetch(kept[i], pngs[i], using)
                if drawn_with(pngs[i]) == (f"{scale_max:g}", digest) and digest:
                    os.utime(pngs[i])
                    continue
                render(
                    cogs[i], pngs[i], product=product, period=periods[i],
                    aggregation=aggregations[i], scale_max=scale_max, outlines=outlines,
                    digest=digest,
                )  # fmt: skip
                log.info("drew %s", pngs[i])
                if kept:
                    with open(pngs[i], "rb") as stream:
                        s3.write(kept[i], stream.read())
