"""Ways a chip file goes wrong in the world: each rewrites one chip in place.

Every mutation keeps the chip's folder and file name, so only its contents say that it
is not the chip its name says. Used by the workflow tests on copies of the sample.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import rasterio
import rasterio.warp
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning


def _read(path: Path):
    with rasterio.open(path) as source:
        return source.profile, source.read(1)


def _write(path: Path, profile: dict, values: np.ndarray) -> None:
    profile = {**profile, "width": values.shape[1], "height": values.shape[0]}
    with rasterio.open(path, "w", **profile) as target:
        target.write(values, 1)


def nodata_tag(path: Path, value: float = -9999.0) -> None:
    """NaN written as ``value``, with a nodata tag saying so (float64 kept)."""
    profile, values = _read(path)
    _write(path, {**profile, "nodata": value}, np.where(np.isnan(values), value, values))


def int16_with_nodata(path: Path, value: int = -9999) -> None:
    """Values rounded to int16, NaN written as ``value`` with a nodata tag."""
    profile, values = _read(path)
    values = np.where(np.isnan(values), value, np.round(values)).astype("int16")
    _write(path, {**profile, "dtype": "int16", "nodata": value}, values)


def copy_of(path: Path, other: Path) -> None:
    """Another chip's file copied over this one (its bounds are the other chip's)."""
    shutil.copyfile(other, path)


def shifted(path: Path, degrees_east: float) -> None:
    """The same pixels, georeferenced ``degrees_east`` further east."""
    profile, values = _read(path)
    t = profile["transform"]
    moved = Affine(t.a, t.b, t.c + degrees_east, t.d, t.e, t.f)
    _write(path, {**profile, "transform": moved}, values)


def resized(path: Path, pixels: int, fill: float = 999.0) -> None:
    """``pixels`` columns and rows fewer (negative) or more, filled with ``fill``."""
    profile, values = _read(path)
    height, width = values.shape
    grown = np.full((height + pixels, width + pixels), fill)
    rows, cols = min(height, height + pixels), min(width, width + pixels)
    grown[:rows, :cols] = values[:rows, :cols]
    _write(path, profile, grown)


def scale_tagged(path: Path, scale: float = 0.1) -> None:
    """Values stored as ``value / scale`` with a scale tag saying so (packed data)."""
    profile, values = _read(path)
    _write(path, profile, values / scale)
    with rasterio.open(path, "r+") as target:
        target.scales = (scale,)


def with_values(path: Path, value: float, count: int = 5) -> None:
    """``count`` valid pixels set to ``value`` (inf, 1e300, -50, 5000...)."""
    profile, values = _read(path)
    rows, cols = np.nonzero(~np.isnan(values))
    values[rows[:count], cols[:count]] = value
    _write(path, profile, values)


def all_nan(path: Path) -> None:
    """Written, but without data: every pixel NaN."""
    profile, values = _read(path)
    _write(path, profile, np.full(values.shape, np.nan))


def nan_geotransform(path: Path) -> None:
    """A geotransform with NaN in it (GDAL writes what it is given)."""
    profile, values = _read(path)
    t = profile["transform"]
    _write(path, {**profile, "transform": Affine(t.a, 0.0, float("nan"), 0.0, t.e, t.f)}, values)


def two_bands(path: Path) -> None:
    """A second band (twice the first) after the chip's own."""
    profile, values = _read(path)
    with rasterio.open(path, "w", **{**profile, "count": 2}) as target:
        target.write(np.stack([values, values * 2]))


def web_mercator(path: Path) -> None:
    """The same pixels, their corner and size in EPSG:3857 metres."""
    profile, values = _read(path)
    t = profile["transform"]
    (x,), (y,) = rasterio.warp.transform("EPSG:4326", "EPSG:3857", [t.c], [t.f])
    metres = Affine(t.a * 111_320, 0.0, x, 0.0, t.e * 111_320, y)
    _write(path, {**profile, "crs": "EPSG:3857", "transform": metres}, values)


def without_crs(path: Path) -> None:
    """The same pixels and geotransform, no CRS."""
    profile, values = _read(path)
    _write(path, {**profile, "crs": None}, values)


def coarser(path: Path) -> None:
    """The same square at twice the pixel size (every other row and column)."""
    profile, values = _read(path)
    t = profile["transform"]
    half = Affine(t.a * 2, 0.0, t.c, 0.0, t.e * 2, t.f)
    _write(path, {**profile, "transform": half}, values[::2, ::2].copy())


def complex_values(path: Path) -> None:
    """The same values as complex64."""
    profile, values = _read(path)
    _write(path, {**profile, "dtype": "complex64"}, values.astype("complex64"))


def empty(path: Path) -> None:
    """Zero bytes: an upload that never started."""
    path.write_bytes(b"")


def error_document(path: Path) -> None:
    """S3's XML error saved under the chip's name (a download that failed)."""
    path.write_text("<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>")


def png(path: Path) -> None:
    """A PNG quicklook (bytes) under the chip's name."""
    _profile, values = _read(path)
    height, width = values.shape
    with warnings.catch_warnings(category=NotGeoreferencedWarning, action="ignore"):
        with rasterio.open(
            path, "w", driver="PNG", width=width, height=height, count=1, dtype="uint8"
        ) as target:  # a PNG has no geotransform
            target.write(np.nan_to_num(values).astype("uint8"), 1)


def tiled_deflate(path: Path) -> None:
    """The same chip, tiled and DEFLATE-compressed: valid, and smaller than its siblings."""
    profile, values = _read(path)
    layout = dict(tiled=True, blockxsize=32, blockysize=32, compress="deflate")
    _write(path, {**profile, **layout}, values)


def big_endian(path: Path) -> None:
    """The same chip, its pixels stored big-endian: valid."""
    profile, values = _read(path)
    _write(path, {**profile, "endianness": "big"}, values)


def as_float32(path: Path) -> None:
    """The same chip as float32: valid."""
    profile, values = _read(path)
    _write(path, {**profile, "dtype": "float32"}, values.astype("float32"))


def masked_rows(path: Path, rows: slice, fill: float = 0.0) -> None:
    """Rows without a value: they hold ``fill``, and an internal mask band (GDAL's
    per-dataset mask) says they have none, as a nodata tag would: valid."""
    profile, values = _read(path)
    mask = np.full(values.shape, 255, dtype="uint8")
    mask[rows] = 0
    values[rows] = fill
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", **profile) as target:
            target.write(values, 1)
            target.write_mask(mask)


def moved(path: Path, cols: int = 1) -> None:
    """The same pixels moved ``cols`` columns east, the georeferencing unchanged (a chip cut
    a pixel off and labelled as if it were not); the columns left behind are NaN."""
    profile, values = _read(path)
    shifted_values = np.full(values.shape, np.nan)
    shifted_values[:, cols:] = values[:, :-cols]
    _write(path, profile, shifted_values)


def lake(path: Path, lon: float, lat: float, radius: float) -> None:
    """NaN where a pixel's centre is within ``radius`` degrees of (``lon``, ``lat``): the
    model's water mask, the same in every chip that holds the pixel: valid."""
    profile, values = _read(path)
    t = profile["transform"]
    rows, cols = np.indices(values.shape)
    lons, lats = t.c + (cols + 0.5) * t.a, t.f + (rows + 0.5) * t.e
    values[(lons - lon) ** 2 + (lats - lat) ** 2 < radius**2] = np.nan
    _write(path, profile, values)
