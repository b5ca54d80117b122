"""Mosaic layout on the pixel lattice, and streaming mosaics of tiny rasters."""

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from etm.errors import ChipGridError, ChipReadError
from etm.mosaic import Footprint, band_rows, plan_layout, write_mosaic

WGS84 = CRS.from_epsg(4326)
RES = 0.0020810045


def footprint(name, col, row, width=10, height=8, crs=WGS84, res=RES):
    transform = Affine(res, 0, -106.8 + col * RES, 0, -res, 47.4 - row * RES)
    return Footprint(name, crs, transform, width, height)


def test_neighbours_overlapping_by_a_pixel_share_one_grid():
    layout = plan_layout([footprint("a", 0, 0), footprint("b", 9, 0), footprint("c", 0, 7)])
    assert (layout.width, layout.height) == (19, 15)
    assert [(p.row, p.col) for p in layout.placements] == [(0, 0), (0, 9), (7, 0)]
    assert layout.transform == footprint("a", 0, 0).transform


def test_origin_is_the_north_west_most_raster_on_the_lattice():
    layout = plan_layout([footprint("b", 9, 3), footprint("a", -4, 5)])
    assert layout.transform.c == pytest.approx(-106.8 - 4 * RES, abs=1e-12)
    assert layout.transform.f == pytest.approx(47.4 - 3 * RES, abs=1e-12)
    assert [(p.row, p.col) for p in layout.placements] == [(0, 13), (2, 0)]


@pytest.mark.parametrize("odd_position", [0, 2])
def test_half_pixel_shift_is_an_error_naming_the_shifted_raster(odd_position):
    rasters = [footprint("a", 0, 0), footprint("b", 9, 0)]
    rasters.insert(odd_position, footprint("shifted", 4.5, 7))
    with pytest.raises(ChipGridError, match=r"^chip shifted: is 0.50 pixel off the pixel lattice"):
        plan_layout(rasters)


def test_float_noise_well_under_a_pixel_is_on_the_lattice():
    plan_layout([footprint("a", 0, 0), footprint("b", 9 + 1e-7, 7 - 1e-7)])


@pytest.mark.parametrize(
    "odd, message",
    [
        (footprint("odd", 9, 0, crs=CRS.from_epsg(4269)), "has CRS EPSG:4269, not EPSG:4326"),
        (footprint("odd", 9, 0, res=RES * 1.001), "has pixel size"),
        (footprint("odd", 9, 0, crs=None), "has no CRS"),
    ],
)
def test_rasters_from_another_grid_are_named(odd, message):
    with pytest.raises(ChipGridError, match=f"^chip odd: {message}"):
        plan_layout([footprint("a", 0, 0), odd, footprint("b", 0, 7)])


def test_rotated_grid_is_refused():
    rotated = Footprint("r", WGS84, Affine(RES, 0.001, 0, 0, -RES, 0), 4, 4)
    with pytest.raises(ChipGridError, match="is not a north-up grid"):
        plan_layout([rotated])


def test_band_rows_are_whole_tile_rows_within_budget():
    assert band_rows(width=10_000, itemsize=4, blocksize=512, budget_bytes=64 << 20) == 3 * 512
    assert band_rows(width=100_000, itemsize=4, blocksize=512, budget_bytes=1) == 512


def write(path, values, col, row, crs="EPSG:4326", blockysize=1):
    transform = Affine(RES, 0, -106.8 + col * RES, 0, -RES, 47.4 - row * RES)
    with rasterio.open(
        path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
        dtype="float64", crs=crs, transform=transform, blockysize=blockysize,
    ) as dst:  # fmt: skip
        dst.write(values, 1)
    return str(path)


def test_first_valid_value_wins_and_bands_stitch_exactly(tmp_path):
    rng = np.random.default_rng(1)
    west = rng.random((40, 30))
    east = rng.random((40, 30))
    west[:, -1] = np.nan  # west has no value on the shared column: east's value is used
    west[5, -2] = np.nan
    sources = [write(tmp_path / "w.tif", west, 0, 0), write(tmp_path / "e.tif", east, 28, 3)]
    out = str(tmp_path / "m.tif")
    layout = write_mosaic(sources, out, dtype="float64", blocksize=16, band_budget_bytes=1)
    expected = np.full((43, 58), np.nan)
    expected[3:43, 28:58] = east
    overlap = expected[0:40, 0:30]
    np.copyto(overlap, west, where=~np.isnan(west))
    with rasterio.open(out) as result:
        assert (result.width, result.height) == (layout.width, layout.height) == (58, 43)
        assert result.block_shapes == [(16, 16)] and np.isnan(result.nodata)
        np.testing.assert_array_equal(result.read(1), expected)


def test_truncated_source_is_named(tmp_path):
    good = write(tmp_path / "good.tif", np.ones((64, 64)), 0, 0)
    bad = write(tmp_path / "bad.tif", np.ones((64, 64)), 63, 0)
    data = open(bad, "rb").read()
    open(bad, "wb").write(data[: len(data) // 2])
    with pytest.raises(ChipReadError, match=f"^chip {bad}: cannot be read in full"):
        write_mosaic([good, bad], str(tmp_path / "m.tif"), dtype="float32", blocksize=16)


def test_unopenable_source_is_named(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(ChipReadError, match=f"^chip {bad}: cannot be opened"):
        write_mosaic([str(bad)], str(tmp_path / "m.tif"), dtype="float32", blocksize=16)
