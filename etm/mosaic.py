"""Streaming mosaics of rasters that share one pixel lattice.

Chips are cut from one master grid, so every chip sits at a whole-pixel offset of its
neighbours; adjacent chips may overlap by a pixel. A mosaic is planned from the rasters'
headers (:func:`plan_layout`), then filled band by band into a tiled temporary GeoTIFF,
so memory depends on the mosaic's width, never on its area.

Overlaps: the first valid (non-NaN) value wins, in the order the sources are given
(the workflow gives chips in reading order, north-west first). Where the model is
deterministic, overlapping pixels are equal and the order does not matter.
Annual aggregates use the same streaming path, adding up or averaging the monthly mosaics.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from etm.checks import ChipExpectation, ChipStats, check_header, clean_values
from etm.errors import ChipGridError, ChipReadError, one_line

#: Largest distance from a whole pixel offset accepted as "on the lattice", in pixels.
LATTICE_TOLERANCE_PX = 0.01
#: Largest relative pixel-size difference accepted as "the same pixel size".
PIXEL_SIZE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Footprint:
    """Where one raster lies: its path, CRS, transform and shape."""

    path: str
    crs: CRS | None
    transform: Affine
    width: int
    height: int


@dataclass(frozen=True)
class Placement:
    """A source raster's position in the mosaic, in whole pixels."""

    path: str
    row: int
    col: int
    height: int
    width: int


@dataclass(frozen=True)
class Layout:
    """The mosaic's grid and every source's placement on it."""

    crs: CRS
    transform: Affine
    width: int
    height: int
    placements: tuple[Placement, ...]


def _reason_to_differ(fp: Footprint, ref: Footprint) -> str | None:
    """Why a raster cannot join the reference raster's grid, or None if it can."""
    t, r = fp.transform, ref.transform
    if fp.crs is None:
        return "has no CRS"
    if fp.crs != ref.crs:
        return f"has CRS {fp.crs.to_string()}, not {ref.crs.to_string()} like {ref.path}"
    for mine, theirs in ((t.a, r.a), (-t.e, -r.e)):
        if abs(mine - theirs) > PIXEL_SIZE_TOLERANCE * abs(theirs):
            return f"has pixel size {t.a!r} x {-t.e!r}, not {r.a!r} x {-r.e!r} like {ref.path}"
    return None


def _grid_key(fp: Footprint) -> tuple[str, float, float]:
    """CRS and pixel size, rounded so that rasters of one master grid share the key."""
    crs = fp.crs.to_string() if fp.crs else ""
    return crs, round(fp.transform.a, 12), round(fp.transform.e, 12)


def _fraction(offset: float) -> float:
    """Distance of an offset from the nearest whole number, in (-0.5, 0.5]."""
    return offset - round(offset)


def plan_layout(footprints: Sequence[Footprint]) -> Layout:
    """Check that rasters share one pixel lattice and place them on the mosaic's grid.

    The reference grid (CRS, pixel size, lattice phase) is the one most rasters share,
    so an odd raster is named whatever its position in the list.

    Parameters
    ----------
    footprints : sequence of Footprint
        At least one; the order is kept in the placements.

    Returns
    -------
    Layout

    Raises
    ------
    ChipGridError
        Naming the first raster that is rotated, has another CRS or pixel size, or is not
        at a whole-pixel offset of the others (a half-pixel shift is an error, never a
        resample).
    """
    for fp in footprints:
        t = fp.transform
        if t.b or t.d or t.a <= 0 or t.e >= 0:
            raise ChipGridError(fp.path, f"is not a north-up grid (transform {tuple(t)[:6]})")
    majority = Counter(_grid_key(fp) for fp in footprints).most_common(1)[0][0]
    ref = next(fp for fp in footprints if _grid_key(fp) == majority)
    for fp in footprints:
        reason = _reason_to_differ(fp, ref)
        if reason:
            raise ChipGridError(fp.path, f"{reason}; it is not from the same master grid")
    xres, yres = ref.transform.a, -ref.transform.e
    cols = [(fp.transform.c - ref.transform.c) / xres for fp in footprints]
    rows = [(ref.transform.f - fp.transform.f) / yres for fp in footprints]
    # Lattice phase per raster, in [0, 1): equal for rasters on one lattice.
    phase = Counter(
        (round(c % 1, 2) % 1, round(r % 1, 2) % 1) for c, r in zip(cols, rows, strict=True)
    )
    phase_col, phase_row = phase.most_common(1)[0][0]
    for fp, col, row in zip(footprints, cols, rows, strict=True):
        shift = max(abs(_fraction(col - phase_col)), abs(_fraction(row - phase_row)))
        if shift > LATTICE_TOLERANCE_PX:
            raise ChipGridError(
                fp.path,
                f"is {shift:.2f} pixel off the pixel lattice of the other rasters "
                f"(offset {col:.2f}, {row:.2f} px from {ref.path}); "
                "regenerate it on the master grid",
            )
    cols = [round(c - phase_col) for c in cols]
    rows = [round(r - phase_row) for r in rows]
    left, top = min(cols), min(rows)
    transform = Affine(
        xres, 0.0, ref.transform.c + (left + phase_col) * xres,
        0.0, -yres, ref.transform.f - (top + phase_row) * yres,
    )  # fmt: skip
    placements = tuple(
        Placement(fp.path, r - top, c - left, fp.height, fp.width)
        for fp, r, c in zip(footprints, rows, cols, strict=True)
    )
    width = max(p.col + p.width for p in placements)
    height = max(p.row + p.height for p in placements)
    return Layout(ref.crs, transform, width, height, placements)


def _open(path: str, name: str, stack: ExitStack):
    try:
        dataset = stack.enter_context(rasterio.open(path))
    except RasterioIOError as error:
        raise ChipReadError(name, f"cannot be opened ({_gdal_reason(error)})") from None
    if dataset.count != 1:
        raise ChipGridError(name, f"has {dataset.count} bands; chips have one")
    return dataset


def _gdal_reason(error: Exception) -> str:
    return one_line(error.__cause__ or error)


def band_rows(width: int, itemsize: int, unit: int, budget_bytes: int) -> int:
    """Rows per band: a whole number of ``unit`` rows, as many as the memory budget allows.

    Parameters
    ----------
    width : int
        Mosaic width in pixels.
    itemsize : int
        Bytes per pixel of the output type.
    unit : int
        Granularity in rows (whole tile rows of every level).
    budget_bytes : int
        Memory for one band.

    Returns
    -------
    int
        At least ``unit``.
    """
    return unit * max(1, budget_bytes // (unit * width * itemsize))


def overview_sizes(width: int, height: int, blocksize: int) -> list[tuple[int, int]]:
    """Sizes of the overview levels (factors 2, 4, 8, ...), rounding odd sizes up.

    Levels are added, as GDAL's COG driver does, until the larger side fits in one tile.

    Parameters
    ----------
    width, height : int
        Full-resolution size.
    blocksize : int
        Internal tile edge.

    Returns
    -------
    list of (width, height)
    """
    sizes = []
    while max(width, height) > blocksize:
        width, height = (width + 1) // 2, (height + 1) // 2
        sizes.append((width, height))
    return sizes


def halve(sums: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Add up 2 x 2 blocks of valid-pixel sums and counts (an odd edge counts alone).

    Parameters
    ----------
    sums : numpy.ndarray
        Sum of the valid pixels each cell covers (0 where none).
    counts : numpy.ndarray
        How many valid pixels each cell covers.

    Returns
    -------
    tuple of numpy.ndarray
        The next level's sums and counts; ``sums / counts`` is the true area mean.
    """
    rows, cols = sums.shape
    if rows % 2 or cols % 2:
        pad = ((0, rows % 2), (0, cols % 2))
        sums, counts = np.pad(sums, pad), np.pad(counts, pad)
    # Sums in float64: exactly rounded means, which also compress about 10% better than
    # means of float32 sums (rounding noise in the low bits defeats the predictor).
    first = sums[0::2, 0::2].astype(np.float64, copy=False)
    return (
        first + sums[1::2, 0::2] + sums[0::2, 1::2] + sums[1::2, 1::2],
        counts[0::2, 0::2] + counts[1::2, 0::2] + counts[0::2, 1::2] + counts[1::2, 1::2],
    )


def area_means(sums: np.ndarray, counts: np.ndarray, dtype: str) -> np.ndarray:
    """Mean of the valid pixels each cell covers; NaN where it covers none."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts).astype(dtype)


@dataclass(frozen=True)
class Mosaic:
    """A mosaic written as one uncompressed GeoTIFF per level: full resolution first.

    ``stats`` holds, for checked chips, what each one's pixels held (else empty).
    """

    layout: Layout
    levels: tuple[str, ...]
    stats: tuple[ChipStats, ...] = ()


@dataclass(frozen=True)
class _Source:
    """An open source and how its pixels are read: checked (a chip) or as they are."""

    dataset: object
    name: str
    stats: ChipStats | None

    def read(self, window: Window, dtype: str) -> np.ndarray:
        if self.stats is None:
            return self.dataset.read(1, window=window, out_dtype=dtype)
        values = self.dataset.read(1, window=window)
        clean_values(self.name, values, self.dataset.nodata, dtype)
        self.stats.add(values)
        return values


def write_levels(
    sources: Sequence[str],
    folder: str,
    *,
    dtype: str,
    blocksize: int,
    names: Sequence[str] | None = None,
    combine: str = "first",
    chips: Sequence[ChipExpectation] | None = None,
    band_budget_bytes: int = 32 << 20,
) -> Mosaic:
    """Mosaic or aggregate rasters on one lattice, band by band, with every overview level.

    Each band of whole tile rows is filled from the sources, written, and reduced into
    the overview levels, so memory depends on the mosaic's width, never on its area.
    Overview pixels are the true mean of the valid full-resolution pixels they cover
    (AVERAGE that ignores NaN, computed exactly from sums and counts, not level by level).

    Parameters
    ----------
    sources : sequence of str
        Single-band rasters on one pixel lattice.
    folder : str
        Where ``level0.tif`` (full resolution), ``level1.tif`` (2x), ... are written:
        tiled ``blocksize``, uncompressed, NaN nodata.
    dtype : str
        Output pixel type, e.g. ``float32``.
    blocksize : int
        Internal tile edge; bands are whole tile rows.
    names : sequence of str, optional
        What errors call each source (e.g. its S3 path when ``sources`` are local copies).
    combine : {"first", "sum", "mean"}
        Per pixel: the first valid value in the sources' order (a mosaic), or the sum or
        mean of the sources that cover it (annual aggregates of monthly mosaics; a sum is
        NaN where any of them is NaN, a mean only where all are).
    chips : sequence of ChipExpectation, optional
        For chip sources, the chip each one must be: header and values are checked
        (:mod:`etm.checks`) and counted into the Mosaic's ``stats``.
    band_budget_bytes : int
        Memory for one band of output.

    Returns
    -------
    Mosaic

    Raises
    ------
    ChipReadError
        If a source cannot be opened or read in full.
    ChipContentError
        If a chip is not the chip it should be, or holds infinite values.
    ChipGridError
        If a source is not on the others' pixel lattice.
    """
    names = names or sources
    with ExitStack() as stack:
        datasets = [_open(path, name, stack) for path, name in zip(sources, names, strict=True)]
        if chips is not None:
            for dataset, name, chip in zip(datasets, names, chips, strict=True):
                check_header(
                    name, dataset.dtypes[0], dataset.transform, dataset.crs, dataset.width,
                    dataset.height, chip, scale=dataset.scales[0], offset=dataset.offsets[0],
                    unit=dataset.units[0] or "",
                )  # fmt: skip
        stats = tuple(ChipStats() for _ in datasets) if chips is not None else ()
        readers = [
            _Source(dataset, name, stats[index] if stats else None)
            for index, (dataset, name) in enumerate(zip(datasets, names, strict=True))
        ]
        layout = plan_layout(
            [
                Footprint(name, d.crs, d.transform, d.width, d.height)
                for name, d in zip(names, datasets, strict=True)
            ]
        )
        sizes = [
            (layout.width, layout.height),
            *overview_sizes(layout.width, layout.height, blocksize),
        ]
        # Bands of whole tile rows, which also halve into whole rows of every level.
        unit = max(blocksize, 2 ** (len(sizes) - 1))
        rows = band_rows(layout.width, np.dtype(dtype).itemsize, unit, band_budget_bytes)
        paths = tuple(os.path.join(folder, f"level{level}.tif") for level in range(len(sizes)))
        outputs = [
            stack.enter_context(
                rasterio.open(
                    path,
                    "w",
                    driver="GTiff",
                    width=width,
                    height=height,
                    count=1,
                    dtype=dtype,
                    crs=layout.crs,
                    transform=layout.transform @ Affine.scale(2**level),
                    nodata=float("nan"),
                    tiled=True,
                    blockxsize=blocksize,
                    blockysize=blocksize,
                    BIGTIFF="IF_SAFER",
                )
            )  # fmt: skip
            for level, (path, (width, height)) in enumerate(zip(paths, sizes, strict=True))
        ]

        def assemble(top: int) -> np.ndarray:
            height = min(rows, layout.height - top)
            if combine == "first":
                return _first_valid(readers, layout, top, height, dtype)
            return _aggregate(readers, layout, top, height, dtype, combine)

        # A reader thread fills the next band while this one is written and reduced
        # (each dataset is used by one thread only).
        reader = stack.enter_context(ThreadPoolExecutor(1))
        tops = range(0, layout.height, rows)
        upcoming = reader.submit(assemble, tops[0])
        for index, top in enumerate(tops):
            band = upcoming.result()
            if index + 1 < len(tops):
                upcoming = reader.submit(assemble, tops[index + 1])
            outputs[0].write(band, 1, window=Window(0, top, layout.width, band.shape[0]))
            counts = (~np.isnan(band)).view(np.uint8)
            sums = np.nan_to_num(band, copy=False)  # written already: reuse its memory
            for level, output in enumerate(outputs[1:], start=1):
                sums, counts = halve(sums, counts)
                if level == 1:  # from here on, counts of many pixels
                    counts = counts.astype(np.uint32)
                means = area_means(sums, counts, dtype)
                output.write(means, 1, window=Window(0, top >> level, *means.shape[::-1]))
    return Mosaic(layout, paths, stats)


def _rows_in_band(source: _Source, place: Placement, top: int, height: int, dtype: str):
    """A source's rows that fall in the band, and where they go; None if none do."""
    first = max(top, place.row)
    last = min(top + height, place.row + place.height)
    if first >= last:
        return None
    window = Window(0, first - place.row, place.width, last - first)
    try:
        data = source.read(window, dtype)
    except RasterioIOError as error:
        raise ChipReadError(
            place.path,
            f"cannot be read in full, truncated or corrupt ({_gdal_reason(error)}); "
            "re-upload it, then rerun",
        ) from None
    return data, (slice(first - top, last - top), slice(place.col, place.col + place.width))


def _first_valid(sources, layout: Layout, top: int, height: int, dtype: str) -> np.ndarray:
    """A band where each pixel is the first valid value of the sources, in their order."""
    band = np.full((height, layout.width), np.nan, dtype=dtype)
    for source, place in zip(sources, layout.placements, strict=True):
        rows = _rows_in_band(source, place, top, height, dtype)
        if rows:
            data, where = rows
            np.copyto(band[where], data, where=np.isnan(band[where]))
    return band


def _aggregate(
    sources, layout: Layout, top: int, height: int, dtype: str, combine: str
) -> np.ndarray:
    """A band where each pixel is the sum or mean of the sources that cover it (float64).

    A sum is NaN where any covering source is NaN (a month without data has no total);
    a mean is NaN only where every covering source is NaN.
    """
    totals = np.zeros((height, layout.width))
    valid = np.zeros((height, layout.width), dtype=np.uint16)
    covering = np.zeros((height, layout.width), dtype=np.uint16)
    for source, place in zip(sources, layout.placements, strict=True):
        rows = _rows_in_band(source, place, top, height, "float64")
        if rows:
            data, where = rows
            present = ~np.isnan(data)
            totals[where] += np.where(present, data, 0.0)
            valid[where] += present
            covering[where] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        if combine == "sum":
            band = np.where((valid == covering) & (covering > 0), totals, np.nan)
        else:
            band = totals / valid
    return band.astype(dtype)
