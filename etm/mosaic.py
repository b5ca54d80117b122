"""Streaming mosaics of rasters that share one pixel lattice.

Chips are cut from one master grid, so every chip sits at a whole-pixel offset of its
neighbours; adjacent chips may overlap by a pixel. A mosaic is planned from the rasters'
headers (:func:`plan_layout`), then filled band by band into a tiled temporary GeoTIFF,
so memory depends on the mosaic's width, never on its area.

Overlaps: the first valid (non-NaN) value wins, in the order the sources are given
(the workflow gives chips in reading order, north-west first). Where the model is
deterministic, overlapping pixels are equal and the order does not matter.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from etm.errors import ChipGridError, ChipReadError

log = logging.getLogger(__name__)

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
    cause = error.__cause__ or error
    return " ".join(str(cause).split())


def band_rows(width: int, itemsize: int, blocksize: int, budget_bytes: int) -> int:
    """Rows per band: a whole number of tile rows, as many as the memory budget allows.

    Parameters
    ----------
    width : int
        Mosaic width in pixels.
    itemsize : int
        Bytes per pixel of the output type.
    blocksize : int
        Internal tile edge of the output.
    budget_bytes : int
        Memory for one band.

    Returns
    -------
    int
        At least one tile row.
    """
    return blocksize * max(1, budget_bytes // (blocksize * width * itemsize))


def write_mosaic(
    sources: Sequence[str],
    destination: str,
    *,
    dtype: str,
    blocksize: int,
    names: Sequence[str] | None = None,
    band_budget_bytes: int = 64 << 20,
) -> Layout:
    """Mosaic rasters on one lattice into a tiled, uncompressed GeoTIFF, band by band.

    Parameters
    ----------
    sources : sequence of str
        Single-band rasters; in overlaps the first valid value in this order wins.
    names : sequence of str, optional
        What errors call each source (e.g. its S3 path when ``sources`` are local copies).
    destination : str
        The GeoTIFF to write (NaN nodata, tiled ``blocksize``).
    dtype : str
        Output pixel type, e.g. ``float32``.
    blocksize : int
        Internal tile edge; bands are whole tile rows.
    band_budget_bytes : int
        Memory for one band of output.

    Returns
    -------
    Layout

    Raises
    ------
    ChipReadError
        If a source cannot be opened or read in full.
    ChipGridError
        If a source is not on the others' pixel lattice.
    """
    names = names or sources
    with ExitStack() as stack:
        datasets = [_open(path, name, stack) for path, name in zip(sources, names, strict=True)]
        layout = plan_layout(
            [
                Footprint(name, d.crs, d.transform, d.width, d.height)
                for name, d in zip(names, datasets, strict=True)
            ]
        )
        profile = dict(
            driver="GTiff",
            width=layout.width,
            height=layout.height,
            count=1,
            dtype=dtype,
            crs=layout.crs,
            transform=layout.transform,
            nodata=float("nan"),
            tiled=True,
            blockxsize=blocksize,
            blockysize=blocksize,
            BIGTIFF="IF_SAFER",
        )
        rows = band_rows(layout.width, np.dtype(dtype).itemsize, blocksize, band_budget_bytes)
        with rasterio.open(destination, "w", **profile) as out:
            for top in range(0, layout.height, rows):
                height = min(rows, layout.height - top)
                band = np.full((height, layout.width), np.nan, dtype=dtype)
                for dataset, place in zip(datasets, layout.placements, strict=True):
                    _paste(dataset, place, band, top)
                out.write(band, 1, window=Window(0, top, layout.width, height))
    return layout


def _paste(dataset, place: Placement, band: np.ndarray, top: int) -> None:
    """Copy a source's rows that fall in the band where the band has no value yet."""
    first = max(top, place.row)
    last = min(top + band.shape[0], place.row + place.height)
    if first >= last:
        return
    window = Window(0, first - place.row, place.width, last - first)
    try:
        data = dataset.read(1, window=window, out_dtype=band.dtype)
    except RasterioIOError as error:
        raise ChipReadError(
            place.path,
            f"cannot be read in full, truncated or corrupt ({_gdal_reason(error)}); "
            "re-upload it, then rerun",
        ) from None
    view = band[first - top : last - top, place.col : place.col + place.width]
    np.copyto(view, data, where=np.isnan(view))
