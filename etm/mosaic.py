"""Streaming mosaics of rasters that share one pixel lattice.

Chips are cut from one master grid, so every chip sits at a whole-pixel offset of its
neighbours; adjacent chips may overlap by a pixel. A mosaic is planned from the rasters'
headers (:func:`plan_layout`), then filled band by band into temporary GeoTIFFs, one per
level, so memory depends on the mosaic's width, never on its area.

Overlaps: the first valid (non-NaN) value wins, in the order the sources are given
(the workflow gives chips in reading order, north-west first). Where the model is
deterministic, overlapping pixels are equal and the order does not matter; for checked
chips the mosaic counts, pair by pair, the shared pixels where they are not
(:class:`etm.checks.EdgeStats`), keeping only the overlaps' strips while it reads.
Annual aggregates use the same streaming path, adding up or averaging the monthly mosaics.
"""

from __future__ import annotations

import math
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

from etm.checks import (
    CHIP_DRIVER,
    EDGE_MIN_PIXELS,
    ChipExpectation,
    ChipStats,
    EdgeStats,
    check_header,
    clean_values,
    grid_key,
    has_mask_band,
)
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
    if not _same_crs(fp.crs, ref.crs):
        return f"has CRS {fp.crs.to_string()}, not {ref.crs.to_string()} like {ref.path}"
    for mine, theirs in ((t.a, r.a), (-t.e, -r.e)):
        if abs(mine - theirs) > PIXEL_SIZE_TOLERANCE * abs(theirs):
            return f"has pixel size {t.a!r} x {-t.e!r}, not {r.a!r} x {-r.e!r} like {ref.path}"
    return None


def _same_crs(crs: CRS, other: CRS) -> bool:
    """Whether two CRSs are one: equal, or both the same EPSG code however written (ArcGIS
    writes WGS 84 as ``GCS_WGS_1984``, which rasterio does not find equal to EPSG:4326)."""
    if crs == other:
        return True
    code = crs.to_epsg()
    return code is not None and code == other.to_epsg()


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
    majority = Counter(grid_key(fp.crs, fp.transform) for fp in footprints).most_common(1)[0][0]
    ref = next(fp for fp in footprints if grid_key(fp.crs, fp.transform) == majority)
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
        dataset = stack.enter_context(rasterio.open(path, driver=CHIP_DRIVER))
    except RasterioIOError as error:
        raise ChipReadError(
            name,
            f"cannot be opened ({_gdal_reason(error, path)}); it is not a whole GeoTIFF: "
            "re-upload it, or rerun the model for it",
        ) from None
    if dataset.count != 1:
        raise ChipGridError(name, f"has {dataset.count} bands; chips have one")
    return dataset


def _gdal_reason(error: Exception, path: str) -> str:
    """GDAL's message without the path it quotes (on S3, Snakemake's local copy of the
    chip): the line names the chip already."""
    return one_line(error.__cause__ or error).replace(f"'{path}' ", "")


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


def level_layout(rows_per_band: int, level: int, blocksize: int) -> dict:
    """GTiff layout of a level file in which every band of rows fills whole blocks.

    A block written in parts stays in GDAL's block cache, which all threads share; if
    another thread (another job's, in Snakemake's process) evicts it meanwhile, its first
    part can be lost (GDAL #2011: half an overview tile came out NaN). So a level's blocks
    are as tall as a band's rows at that level allow: tiles ``blocksize`` wide, or strips
    where that height is not a multiple of 16 (TIFF tiles must be).

    Parameters
    ----------
    rows_per_band : int
        Full-resolution rows per band, a multiple of ``2 ** level``.
    level : int
        0 for the full resolution, 1 for the 2x overview, ...
    blocksize : int
        The COG's tile edge.

    Returns
    -------
    dict
        rasterio creation keywords.
    """
    rows = rows_per_band >> level
    height = math.gcd(rows, blocksize)
    if height % 16 == 0:
        return dict(tiled=True, blockxsize=blocksize, blockysize=height)
    return dict(tiled=False, blockysize=rows)


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


def _corners(rows: int, cols: int):
    """Each cell position of a 2 x 2 block, and the next level's cells it exists for.

    Top-left corners exist for every next-level cell; at an odd edge the others do not
    (the cell counts alone, and no padded copy of a band is made).
    """
    for row, col in ((0, 0), (1, 0), (0, 1), (1, 1)):
        cells = (slice(row, None, 2), slice(col, None, 2))
        yield cells, (slice(0, (rows - row + 1) // 2), slice(0, (cols - col + 1) // 2))


def halve_values(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums and counts of the valid (non-NaN) pixels of 2 x 2 blocks of a band.

    The first overview level, computed a quarter of the band at a time: the band itself
    is left as it is (it may not be written yet).

    Returns
    -------
    tuple of numpy.ndarray
        Sums (float64, 0 where none is valid) and counts (uint32), as :func:`halve` takes.
    """
    rows, cols = values.shape
    size = ((rows + 1) // 2, (cols + 1) // 2)
    # Sums in float64: exactly rounded means, which also compress about 10% better than
    # means of float32 sums (rounding noise in the low bits defeats the predictor).
    total, count = np.zeros(size), np.zeros(size, dtype=np.uint32)
    for cells, inner in _corners(rows, cols):
        valid = ~np.isnan(values[cells])
        total[inner] += np.where(valid, values[cells], 0)
        count[inner] += valid
    return total, count


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
    size = ((rows + 1) // 2, (cols + 1) // 2)
    total, count = np.zeros(size), np.zeros(size, dtype=counts.dtype)
    for cells, inner in _corners(rows, cols):
        total[inner] += sums[cells]
        count[inner] += counts[cells]
    return total, count


def overview_bands(band: np.ndarray, overviews: int, dtype: str) -> list[np.ndarray]:
    """A band's rows at each overview level: the mean of the valid pixels each covers.

    Parameters
    ----------
    band : numpy.ndarray
        Full-resolution rows, NaN where no value; left unchanged.
    overviews : int
        How many levels (factors 2, 4, ...).
    dtype : str
        Pixel type of the levels.
    """
    levels = []
    if overviews:
        sums, counts = halve_values(band)
        levels.append(area_means(sums, counts, dtype))
        for _ in range(overviews - 1):
            sums, counts = halve(sums, counts)
            levels.append(area_means(sums, counts, dtype))
    return levels


def area_means(sums: np.ndarray, counts: np.ndarray, dtype: str) -> np.ndarray:
    """Mean of the valid pixels each cell covers; NaN where it covers none."""
    means = np.empty(sums.shape, dtype=dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.divide(sums, counts, out=means, casting="same_kind")


@dataclass(frozen=True)
class Mosaic:
    """A mosaic written as one uncompressed GeoTIFF per level: full resolution first.

    For checked chips, ``stats`` holds what each one's pixels held, and ``edges`` what each
    pair of chips sharing at least :data:`etm.checks.EDGE_MIN_PIXELS` pixels held on them
    (both empty otherwise).
    """

    layout: Layout
    levels: tuple[str, ...]
    stats: tuple[ChipStats, ...] = ()
    edges: tuple[EdgeStats, ...] = ()


@dataclass(frozen=True)
class _Source:
    """An open source and how its pixels are read: checked (a chip: its nodata tag or mask
    band made NaN) or as they are (etm's own COGs)."""

    dataset: object
    name: str
    stats: ChipStats | None
    masked: bool

    def read(self, window: Window, dtype: str) -> np.ndarray:
        if self.stats is None:
            return self.dataset.read(1, window=window, out_dtype=dtype)
        values = self.dataset.read(1, window=window)
        mask = self.dataset.read_masks(1, window=window) if self.masked else None
        clean_values(self.name, values, self.dataset.nodata, dtype, mask)
        self.stats.add(values)
        return values


@dataclass(frozen=True)
class Overlap:
    """Two sources' shared pixels: their positions among the sources, and the mosaic's
    rows and columns they share (end excluded)."""

    first: int
    second: int
    rows: tuple[int, int]
    cols: tuple[int, int]


def overlaps(layout: Layout, least: int) -> list[Overlap]:
    """Each pair of placements that shares at least ``least`` pixels.

    Parameters
    ----------
    layout : Layout
    least : int
        Pairs sharing fewer pixels (a corner) are left out.

    Returns
    -------
    list of Overlap
        In the placements' order, ``first`` before ``second``.
    """
    found = []
    places = layout.placements
    for first, a in enumerate(places):
        for second in range(first + 1, len(places)):
            b = places[second]
            rows = (max(a.row, b.row), min(a.row + a.height, b.row + b.height))
            cols = (max(a.col, b.col), min(a.col + a.width, b.col + b.width))
            height, width = rows[1] - rows[0], cols[1] - cols[0]
            if height > 0 and width > 0 and height * width >= least:
                found.append(Overlap(first, second, rows, cols))
    return found


class _EdgeComparison:
    """What overlapping chips hold on the pixels they share, compared band by band as the
    mosaic reads them.

    A chip's part of an overlap in a band (a strip a pixel wide, at most a band long) is
    kept only until the other chip's part is read: memory stays a few strips.
    """

    def __init__(self, layout: Layout, tolerance_mm: float):
        self.overlaps = overlaps(layout, EDGE_MIN_PIXELS)
        self.edges = tuple(EdgeStats(pair.first, pair.second) for pair in self.overlaps)
        self._tolerance_mm = tolerance_mm
        self._of_source: dict[int, list[int]] = {}
        for number, pair in enumerate(self.overlaps):
            for index in (pair.first, pair.second):
                self._of_source.setdefault(index, []).append(number)
        self._held: dict[int, np.ndarray] = {}

    def take(self, index: int, place: Placement, data: np.ndarray, row: int) -> None:
        """Keep, or compare with the other chip's, a chip's parts of its overlaps.

        Parameters
        ----------
        index : int
            The chip's position among the sources (read in that order).
        place : Placement
            Its placement.
        data : numpy.ndarray
            Its rows in the band, as stored (NaN for missing).
        row : int
            The mosaic's row of ``data``'s first.
        """
        for number in self._of_source.get(index, ()):
            pair = self.overlaps[number]
            top, bottom = max(pair.rows[0], row), min(pair.rows[1], row + len(data))
            if top >= bottom:
                continue
            cols = slice(pair.cols[0] - place.col, pair.cols[1] - place.col)
            part = data[top - row : bottom - row, cols]
            held = self._held.pop(number, None)
            if held is None:
                self._held[number] = part.copy()  # not a view: the rest of data is freed
            else:
                self.edges[number].add(held, part, self._tolerance_mm)


def write_levels(
    sources: Sequence[str],
    folder: str,
    *,
    dtype: str,
    blocksize: int,
    names: Sequence[str] | None = None,
    combine: str = "first",
    chips: Sequence[ChipExpectation] | None = None,
    edge_tolerance_mm: float = 0.0,
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
        uncompressed, NaN nodata, in whole blocks (:func:`level_layout`).
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
        (:mod:`etm.checks`) and counted into the Mosaic's ``stats``; the pixels each pair
        of them shares are compared into its ``edges``.
    edge_tolerance_mm : float
        With ``chips``: how far apart two chips' values of one shared pixel may be and
        still agree.
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
                    dataset.height, chip, block=dataset.block_shapes[0],
                    scale=dataset.scales[0], offset=dataset.offsets[0],
                    unit=dataset.units[0] or "",
                )  # fmt: skip
        stats = tuple(ChipStats() for _ in datasets) if chips is not None else ()
        readers = [
            _Source(dataset, name, stats[index] if stats else None, has_mask_band(dataset))
            for index, (dataset, name) in enumerate(zip(datasets, names, strict=True))
        ]
        layout = plan_layout(
            [
                Footprint(name, d.crs, d.transform, d.width, d.height)
                for name, d in zip(names, datasets, strict=True)
            ]
        )
        edges = _EdgeComparison(layout, edge_tolerance_mm) if chips is not None else None
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
                    BIGTIFF="IF_SAFER",
                    **level_layout(rows, level, blocksize),
                )
            )  # fmt: skip
            for level, (path, (width, height)) in enumerate(zip(paths, sizes, strict=True))
        ]

        def assemble(top: int) -> np.ndarray:
            height = min(rows, layout.height - top)
            if combine == "first":
                return _first_valid(readers, layout, top, height, dtype, edges)
            return _aggregate(readers, layout, top, height, dtype, combine)

        def write(top: int, levels: list[np.ndarray]) -> None:
            for level, (output, values) in enumerate(zip(outputs, levels, strict=True)):
                _write_rows(output, values, top >> level)

        # One thread makes all of this job's GDAL calls, in turn: a band's reads, then the
        # previous band's writes; this one computes the overviews meanwhile. (Other
        # threads' GDAL calls cannot harm the level files: see level_layout.)
        gdal_calls = stack.enter_context(ThreadPoolExecutor(1))
        tops = range(0, layout.height, rows)
        upcoming = gdal_calls.submit(assemble, tops[0])
        written = None
        for index, top in enumerate(tops):
            band = upcoming.result()
            if index + 1 < len(tops):
                upcoming = gdal_calls.submit(assemble, tops[index + 1])
            levels = [band, *overview_bands(band, len(outputs) - 1, dtype)]
            if written:
                written.result()
            written = gdal_calls.submit(write, top, levels)
            del band, levels  # freed once written
        written.result()
    return Mosaic(layout, paths, stats, edges.edges if edges is not None else ())


def _write_rows(output, values: np.ndarray, top: int) -> None:
    """Write rows of a one-band raster from row ``top``.

    Given as one band of a 3-D view: rasterio copies a 2-D array before writing it.
    """
    output.write(values[np.newaxis], window=Window(0, top, values.shape[1], values.shape[0]))


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
            "cannot be read in full, truncated or corrupt "
            f"({_gdal_reason(error, source.dataset.name)}); "
            "re-upload it, then rerun",
        ) from None
    return data, (slice(first - top, last - top), slice(place.col, place.col + place.width))


def _first_valid(
    sources, layout: Layout, top: int, height: int, dtype: str, edges: _EdgeComparison | None
) -> np.ndarray:
    """A band where each pixel is the first valid value of the sources, in their order;
    the sources' shared pixels compared into ``edges``, if given."""
    band = np.full((height, layout.width), np.nan, dtype=dtype)
    for index, (source, place) in enumerate(zip(sources, layout.placements, strict=True)):
        rows = _rows_in_band(source, place, top, height, dtype)
        if rows:
            data, where = rows
            if edges is not None:
                edges.take(index, place, data, top + where[0].start)
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
