"""Mosaic layout on the pixel lattice, and streaming mosaics of tiny rasters."""

import threading
import warnings

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from etm.checks import ChipExpectation
from etm.errors import ChipGridError, ChipReadError
from etm.grid import Chip
from etm.mosaic import (
    Footprint,
    band_rows,
    halve,
    halve_values,
    level_layout,
    overview_sizes,
    plan_layout,
    write_levels,
)
from etm.sample import MODEL_PIXEL, chip_grid, field, write_chip

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
    layout = plan_layout([footprint("a", 0, 0), footprint("b", 9 + 1e-7, 7 - 1e-7)])
    assert [(p.row, p.col) for p in layout.placements] == [(0, 0), (7, 9)]


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


#: WGS 84 as ArcGIS writes it: rasterio does not find it equal to EPSG:4326.
ESRI_WGS84 = CRS.from_wkt(
    'GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],'
    'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]'
)


def test_a_crs_written_another_way_is_the_same_grid():
    assert ESRI_WGS84 != WGS84
    layout = plan_layout([footprint("a", 0, 0), footprint("esri", 9, 0, crs=ESRI_WGS84)])
    assert layout.crs == WGS84 and [p.col for p in layout.placements] == [0, 9]


def test_rotated_grid_is_refused():
    rotated = Footprint("r", WGS84, Affine(RES, 0.001, 0, 0, -RES, 0), 4, 4)
    with pytest.raises(ChipGridError, match="is not a north-up grid"):
        plan_layout([rotated])


def test_band_rows_are_whole_units_within_budget():
    assert band_rows(width=10_000, itemsize=4, unit=512, budget_bytes=64 << 20) == 3 * 512
    assert band_rows(width=100_000, itemsize=4, unit=512, budget_bytes=1) == 512


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
    mosaic = write_levels(
        sources, str(tmp_path), dtype="float64", blocksize=16, band_budget_bytes=1
    )
    expected = np.full((43, 58), np.nan)
    expected[3:43, 28:58] = east
    overlap = expected[0:40, 0:30]
    np.copyto(overlap, west, where=~np.isnan(west))
    with rasterio.open(mosaic.levels[0]) as result:
        assert (
            (result.width, result.height) == (mosaic.layout.width, mosaic.layout.height) == (58, 43)
        )
        assert result.block_shapes == [(16, 16)] and np.isnan(result.nodata)
        np.testing.assert_array_equal(result.read(1), expected)


@pytest.mark.parametrize("combine", ["sum", "mean"])
def test_aggregates_follow_the_nan_rule_of_sums_and_means(tmp_path, combine):
    rng = np.random.default_rng(2)
    months = rng.random((12, 20, 24)) * 50
    months[3, 0, :] = np.nan  # one month without data on row 0
    months[:, 1, :] = np.nan  # no month with data on row 1
    sources = [write(tmp_path / f"m{m}.tif", months[m], 0, 0) for m in range(12)]
    mosaic = write_levels(
        sources, str(tmp_path), dtype="float32", blocksize=16, combine=combine,
        band_budget_bytes=1,
    )  # fmt: skip
    with rasterio.open(mosaic.levels[0]) as result:
        values = result.read(1)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mean of an all-NaN row
        expected = months.sum(axis=0) if combine == "sum" else np.nanmean(months, axis=0)
    np.testing.assert_allclose(values, expected.astype("float32"), rtol=1e-6)
    assert np.isnan(values[1]).all()
    assert np.isnan(values[0]).all() == (combine == "sum")


def test_overview_sizes_halve_rounding_up_until_one_tile_holds_the_larger_side():
    assert overview_sizes(9612, 9612, 512) == [
        (4806, 4806),
        (2403, 2403),
        (1202, 1202),
        (601, 601),
        (301, 301),
    ]
    assert overview_sizes(1025, 100, 512) == [(513, 50), (257, 25)]
    assert overview_sizes(512, 512, 512) == []


def test_halve_sums_blocks_and_an_odd_edge_alone():
    sums, counts = halve(np.arange(15.0).reshape(3, 5), np.ones((3, 5), dtype=np.uint8))
    np.testing.assert_array_equal(sums, [[12, 20, 13], [21, 25, 14]])
    np.testing.assert_array_equal(counts, [[4, 4, 2], [2, 2, 1]])


def test_first_level_counts_valid_pixels_only_and_leaves_the_band_unchanged():
    values = np.arange(15.0, dtype=np.float32).reshape(3, 5)
    values[0, 0] = values[2, 4] = np.nan
    before = values.copy()
    sums, counts = halve_values(values)
    np.testing.assert_array_equal(sums, [[12, 20, 13], [21, 25, 0]])
    np.testing.assert_array_equal(counts, [[3, 4, 2], [2, 2, 0]])
    assert sums.dtype == np.float64
    np.testing.assert_array_equal(values, before)


@pytest.mark.parametrize(
    "rows_per_band, level, layout",
    [
        (512, 0, dict(tiled=True, blockxsize=512, blockysize=512)),
        (512, 1, dict(tiled=True, blockxsize=512, blockysize=256)),
        (512, 5, dict(tiled=True, blockxsize=512, blockysize=16)),
        (512, 6, dict(tiled=False, blockysize=8)),
        (1536, 0, dict(tiled=True, blockxsize=512, blockysize=512)),
        (1536, 1, dict(tiled=True, blockxsize=512, blockysize=256)),
        (1536, 4, dict(tiled=True, blockxsize=512, blockysize=32)),
        (1536, 5, dict(tiled=True, blockxsize=512, blockysize=16)),
        (1536, 6, dict(tiled=False, blockysize=24)),
    ],
)
def test_a_band_fills_whole_blocks_of_every_level(rows_per_band, level, layout):
    assert level_layout(rows_per_band, level, 512) == layout


def test_level_files_are_written_in_whole_blocks(tmp_path):
    values = np.ones((100, 70))
    mosaic = write_levels(
        [write(tmp_path / "c.tif", values, 0, 0)], str(tmp_path), dtype="float32",
        blocksize=16, band_budget_bytes=1,
    )  # fmt: skip
    # Bands of 16 rows (one tile row): 8, 4, 2 rows of the overviews, in strips.
    heights = []
    for path in mosaic.levels:
        with rasterio.open(path) as level:
            heights.append((level.block_shapes[0][0], level.profile.get("tiled", False)))
    assert heights == [(16, True), (8, False), (4, False), (2, False)]


def test_every_gdal_read_and_write_of_a_mosaic_is_made_by_one_thread(tmp_path, monkeypatch):
    """GDAL's block cache is shared: a dirty block evicted by another thread can be lost."""
    sources = [write(tmp_path / f"c{i}.tif", np.full((64, 64), i), i * 63, 0) for i in range(3)]
    threads = {"read": set(), "write": set()}
    for cls, method in ((rasterio.io.DatasetReader, "read"), (rasterio.io.DatasetWriter, "write")):
        real = getattr(cls, method)

        def spy(self, *args, _real=real, _calls=threads[method], **kwargs):
            _calls.add(threading.get_ident())
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(cls, method, spy)
    mosaic = write_levels(sources, str(tmp_path), dtype="float32", blocksize=16)
    assert len(mosaic.levels) == 5 and threads["write"] == threads["read"]
    assert len(threads["read"]) == 1 and threading.get_ident() not in threads["read"]


def test_overviews_are_true_area_means_of_the_valid_full_resolution_pixels(tmp_path):
    rng = np.random.default_rng(3)
    values = rng.random((64, 64)) * 100
    values[rng.random((64, 64)) < 0.4] = np.nan
    values[:8, :8] = np.nan  # a whole overview pixel without data
    mosaic = write_levels(
        [write(tmp_path / "c.tif", values, 0, 0)], str(tmp_path), dtype="float64", blocksize=16,
    )  # fmt: skip
    assert len(mosaic.levels) == 3  # 64 -> 32 -> 16: bands of 16 rows hold whole rows of both
    with rasterio.open(mosaic.levels[2]) as level2:
        assert level2.transform == mosaic.layout.transform @ Affine.scale(4)
        overview = level2.read(1)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning, match="Mean of empty"):
        expected = np.nanmean(values.reshape(16, 4, 16, 4), axis=(1, 3))
    np.testing.assert_allclose(overview, expected, rtol=1e-12)  # not a mean of means
    assert np.isnan(overview[:2, :2]).all()


def sample_chips(folder, rows=2, cols=2):
    """A rows x cols block of the sample's chips (97 x 97 pixels, cut outward: neighbours
    share a row or column), as paths, their chips, and their values to change."""
    chips = [Chip(474 - 20 * row, -1068 + 20 * col) for row in range(rows) for col in range(cols)]
    grids = [chip_grid(chip, 10 * MODEL_PIXEL) for chip in chips]
    values = [field("etasw", 2020, 7, grid.lons, grid.lats) for grid in grids]
    paths = [str(folder / f"{chip.name}.tif") for chip in chips]
    return paths, chips, grids, values


def test_the_pixels_each_pair_of_checked_chips_shares_are_compared_band_by_band(tmp_path):
    paths, chips, grids, values = sample_chips(tmp_path)
    north_west, north_east = values[0], values[1]
    assert np.array_equal(north_west[:, -1], north_east[:, 0])  # one shared column
    north_west[:10, -1] = north_east[:10, 0] = np.nan  # a lake on both sides: no evidence
    north_east[10:15, 0] = np.nan  # lost on one side
    north_east[20:25, 0] += 1.0  # apart
    north_east[30:35, 0] += 1e-4  # within the tolerance
    for path, grid, chip_values in zip(paths, grids, values, strict=True):
        write_chip(path, grid, chip_values)
    mosaic = write_levels(
        paths, str(tmp_path), dtype="float32", blocksize=16, band_budget_bytes=1,
        chips=[ChipExpectation(chip, 20) for chip in chips], edge_tolerance_mm=1e-3,
    )  # fmt: skip
    # West-east and north-south pairs; the diagonal ones share a corner pixel only.
    counts = {(e.first, e.second): (e.shared, e.compared, e.differ) for e in mosaic.edges}
    assert counts == {(0, 1): (97, 87, 10), (0, 2): (97, 97, 0), (1, 3): (97, 97, 0),
                      (2, 3): (97, 97, 0)}  # fmt: skip
    plain = write_levels(paths, str(tmp_path), dtype="float32", blocksize=16)
    assert plain.edges == ()  # tile years and the region: etm's own COGs


# On S3 a source is Snakemake's local copy of the chip: the line names the chip's key only.
KEYS = ["s3://ws-out/run/chip-a.tif", "s3://ws-out/run/chip-b.tif"]


def test_truncated_source_is_named_by_its_key(tmp_path):
    good = write(tmp_path / "good.tif", np.ones((64, 64)), 0, 0)
    bad = write(tmp_path / "bad.tif", np.ones((64, 64)), 63, 0)
    data = open(bad, "rb").read()
    open(bad, "wb").write(data[: len(data) // 2])
    with pytest.raises(ChipReadError, match=f"^chip {KEYS[1]}: cannot be read in full"):
        write_levels([good, bad], str(tmp_path), dtype="float32", blocksize=16, names=KEYS)


@pytest.mark.parametrize("contents", [b"", b"II*\x00garbage"])  # GDAL quotes the path of one
def test_unopenable_source_is_named_by_its_key(tmp_path, contents):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(contents)
    with pytest.raises(ChipReadError, match=f"^chip {KEYS[0]}: cannot be opened") as error:
        write_levels([str(bad)], str(tmp_path), dtype="float32", blocksize=16, names=KEYS[:1])
    assert str(tmp_path) not in str(error.value)
