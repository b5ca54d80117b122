"""Ways a chip file goes wrong in the world: each rewrites one chip in place.

Every mutation keeps the chip's folder and file name, so only its contents say that it
is not the chip its name says. Used by the workflow tests on copies of the sample.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine


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
