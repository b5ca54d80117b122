"""A chip is the chip its name says: footprint, type, values and plausibility."""

import math

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from etm.checks import (
    EDGE_MIN_PIXELS,
    ChipExpectation,
    ChipPolicy,
    ChipStats,
    EdgeStats,
    Findings,
    check_footprint,
    check_header,
    clean_values,
    judge,
    nan_share,
    neighbour_refusals,
    overlaps_disagree,
    reference_files,
    suspicion,
    usual_nan_shares,
)
from etm.errors import ChipContentError, ChipNeighbourError, ObjectRefusedError, SuspectChipError
from etm.grid import Chip
from etm.listing import LocalListing
from etm.sample import MODEL_PIXEL, ROUNDINGS, TILE_CORNERS, chip_grid, tile_chips

CHIP = Chip(434, -1028)
EXPECTED = ChipExpectation(CHIP, 20)
WGS84 = CRS.from_epsg(4326)
#: WGS 84 in grads: geographic, yet its numbers are not degrees.
GRADS = (
    'GEOGCS["WGS 84 (grads)",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
    'PRIMEM["Greenwich",0],UNIT["grad",0.015707963267949]]'
)


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("pixel", [MODEL_PIXEL, 10 * MODEL_PIXEL])
def test_every_chip_the_model_writes_passes_on_both_pixel_sizes(pixel, rounding):
    for tile in TILE_CORNERS:
        for chip in tile_chips(tile):
            grid = chip_grid(chip, pixel, rounding=rounding)
            check_footprint(
                chip.name, grid.transform, len(grid.lons), len(grid.lats), ChipExpectation(chip, 20)
            )


def footprint(dx_px=0.0, dy_px=0.0, grow=0):
    """A chip exactly at CHIP's corner (961 x 961 model pixels), moved or resized."""
    p = MODEL_PIXEL
    moved = Affine(p, 0, -102.8 + dx_px * p, 0, -p, 43.4 - dy_px * p)
    return moved, 961 + grow, 961 + grow


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(dx_px=1.2), "its upper-left corner is at .*, 1.2 pixels from its name's corner"),
        (dict(dy_px=-1.1), "1.1 pixels from its name's corner"),
        (dict(dx_px=-961.07), "it looks like chip43.4N-104.8E's file, not this chip's"),
        (
            dict(grow=-3),
            "is 958 x 958 pixels: its east edge is 3.1 pixels short of its 2-degree square's",
        ),
        (dict(grow=+3), "is 964 x 964 pixels: its east edge is 2.9 pixels beyond"),
    ],
)
def test_a_chip_off_its_corner_or_of_another_size_is_refused(change, message):
    with pytest.raises(ChipContentError, match=message):
        check_footprint("c.tif", *footprint(**change), EXPECTED)


@pytest.mark.parametrize(
    "corner_px, extra_px",
    [(0, 1), (0.4, 0), (-1, 2), (-0.7, 1), (1, -1), (0.9, -1), (1, 0), (0, 0)],
)
def test_each_edge_may_lie_a_pixel_either_way_of_the_named_square(corner_px, extra_px):
    """Outward rounding (corner west and north, wider), inward (corner inside, narrower) and
    nearest; the named square is 961.07 model pixels wide."""
    transform = footprint(dx_px=corner_px, dy_px=corner_px)[0]
    check_footprint("c.tif", transform, 961 + extra_px, 961 + extra_px, EXPECTED)


def test_an_edge_a_pixel_and_more_off_is_refused():
    with pytest.raises(ChipContentError, match="its south edge is 1.9 pixels beyond"):
        check_footprint("c.tif", footprint()[0], 961, 963, EXPECTED)
    with pytest.raises(ChipContentError, match="its east edge is 1.1 pixels short of"):
        check_footprint("c.tif", footprint(dx_px=-1, dy_px=-1)[0], 961, 962, EXPECTED)


@pytest.mark.parametrize(
    "dtype, transform, message",
    [
        ("int16", footprint()[0], "is int16; chips are float32 or float64"),
        ("float64", Affine(0.002, 0, math.nan, 0, -0.002, 43.4), "geotransform that is not finite"),
        ("float64", Affine(0.002, 0, -102.8, 0, 0.002, 43.4), "is not a north-up grid"),
    ],
)
def test_headers_that_cannot_be_a_chips_are_refused(dtype, transform, message):
    with pytest.raises(ChipContentError, match=message):
        check_header("c.tif", dtype, transform, WGS84, 961, 961, EXPECTED, block=(1, 961))


@pytest.mark.parametrize(
    "crs, message", [(CRS.from_epsg(32613), "is in EPSG:32613; chips are on longitude"),
                     (CRS.from_epsg(4269), "is in EPSG:4269; chips are on longitude"),
                     (CRS.from_wkt(GRADS), "is in .*grad.*; chips are on longitude"),
                     (None, "is in no CRS; chips are on longitude")],
)  # fmt: skip
def test_a_chip_not_on_longitude_and_latitude_is_refused_though_all_its_month_agree(crs, message):
    with pytest.raises(ChipContentError, match=message):
        check_header("c.tif", "float64", footprint()[0], crs, 961, 961, EXPECTED, block=(1, 961))


@pytest.mark.parametrize(
    "tags, message",
    [
        (dict(scale=0.1), "has scale 0.1 and offset 0 tags: its stored values are not mm"),
        (dict(offset=-273.15), "has scale 1 and offset -273.15 tags"),
        (dict(unit="in"), "is tagged in 'in'; every product is in mm"),
    ],
)
def test_values_stored_in_another_unit_or_packed_are_refused(tags, message):
    with pytest.raises(ChipContentError, match=message):
        check_header(
            "c.tif", "float64", footprint()[0], WGS84, 961, 961, EXPECTED, block=(1, 961), **tags
        )
    check_header(
        "c.tif", "float64", footprint()[0], WGS84, 961, 961, EXPECTED, block=(1, 961), unit="mm"
    )


def test_a_nodata_tag_becomes_nan_and_infinities_are_refused():
    values = np.array([[1.0, -9999.0], [np.nan, 3.0]])
    clean_values("c.tif", values, -9999.0, "float32")
    assert np.isnan(values[0, 1]) and values[1, 1] == 3.0
    for bad, dtype in ((np.inf, "float64"), (-np.inf, "float32"), (1e300, "float32")):
        with pytest.raises(ChipContentError, match="infinite values or values beyond"):
            clean_values("c.tif", np.array([[1.0, bad]]), None, dtype)
    clean_values("c.tif", np.array([[1.0, 1e300]]), None, "float64")  # a float64 COG holds it


def test_pixels_a_mask_band_leaves_out_become_nan_whatever_they_hold():
    values = np.array([[1.0, np.inf], [0.0, 3.0]])
    clean_values("c.tif", values, None, "float32", mask=np.array([[255, 0], [0, 255]]))
    np.testing.assert_array_equal(values, [[1.0, np.nan], [np.nan, 3.0]])


def stats_of(values) -> ChipStats:
    stats = ChipStats()
    stats.add(np.asarray(values, dtype=float))
    return stats


def test_implausible_values_and_lost_data_are_suspect():
    ok = stats_of([[1.0, 250.0], [np.nan, 3.0]])
    assert (ok.nan, ok.valid, ok.minimum, ok.maximum) == (1, 3, 1.0, 250.0)
    assert suspicion(ok, (0, 2000), 0.25, 0.25) is None
    assert "outside its product's valid range [0, 2000]" in suspicion(
        stats_of([[-1.0, 3.0]]), (0, 2000), None, 0.25
    )
    lost = stats_of([[np.nan, np.nan], [np.nan, 3.0]])  # 75% NaN, usually 10%
    assert "75% of its pixels are NaN, where it usually has 10%" in suspicion(
        lost, (0, 2000), 0.10, 0.25
    )
    assert suspicion(lost, (0, 2000), None, 0.25) is None  # usual share unknown


def test_suspect_chips_block_their_month_or_are_published_with_a_warning():
    chips = [Chip(474, -1068), Chip(474, -1048), Chip(474, -1028)]
    stats = (stats_of([[5.0]]), stats_of([[-3.0]]), stats_of([[np.nan]]))
    usual = {"chip47.4N-102.8E": 0.0}
    names = ["a.tif", "b.tif", "c.tif"]
    findings = Findings()
    with pytest.raises(SuspectChipError, match=r"^chip b.tif: is suspect: .* \(and 1 more chips\)"):
        judge(names, chips, stats, usual, ChipPolicy((0, 2000), 0.25, "error", 1e-3), findings)
    assert list(findings.suspect) == ["b.tif", "c.tif"]
    warn = ChipPolicy((0, 2000), 0.25, "warn", 1e-3)
    warned = judge(names, chips, stats, usual, warn, Findings())
    assert [line.split(":")[0] for line in warned] == ["chip b.tif", "chip c.tif"]


@pytest.mark.parametrize(
    "years, expected",
    [
        # One year: January alone would make a January written without data usual.
        ([2020], ["2020/etasw_202001", "2020/etasw_202007", "2020/etasw_202012"]),
        ([2019, 2020], ["2019/etasw_201901", "2020/etasw_202001", "2020/etasw_202012"]),
        (range(2001, 2021),
         ["2001/etasw_200101", "2011/etasw_201107", "2020/etasw_202012"]),
    ],
)  # fmt: skip
def test_a_chips_usual_nan_share_is_read_from_files_spread_over_months_and_years(
    tmp_path, years, expected
):
    chip = tmp_path / "r50.0_tile6" / "chip43.4N-102.8E"
    for year in years:
        (chip / str(year)).mkdir(parents=True)
        for month in range(1, 13):
            for name in (f"etasw_{year}{month:02d}", f"etasw5_{year}{month:02d}"):
                (chip / str(year) / f"{name}.tif").touch()
        (chip / str(year) / f"etasw_{year}001.tif").touch()  # a daily file
    files = reference_files(LocalListing(), [str(tmp_path / "r50.0_tile6")], "etasw", None)
    assert files == {"chip43.4N-102.8E": [f"{chip}/{name}.tif" for name in expected]}


@pytest.mark.parametrize("mask_band", [False, True])
@pytest.mark.parametrize("lost_rows", [0, 1, 300, 961])
def test_a_chips_nan_share_from_every_fourth_row_is_right_within_four_rows(
    tmp_path, lost_rows, mask_band
):
    import rasterio

    values = np.ones((961, 962))
    values[:lost_rows] = 0.0 if mask_band else np.nan  # the model's mask: rows of sea, say
    path = tmp_path / "chip.tif"
    grid = dict(driver="GTiff", width=962, height=961, count=1, dtype="float64")
    transform = chip_grid(CHIP, MODEL_PIXEL).transform
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", **grid, transform=transform) as chip:
            chip.write(values, 1)
            if mask_band:  # the missing rows said by GDAL's mask band instead
                chip.write_mask(np.where(np.arange(961)[:, None] < lost_rows, 0, 255))
    assert abs(nan_share(str(path)) - lost_rows / 961) <= 4 / 961


def test_shared_pixels_disagree_where_one_is_nan_or_they_are_apart_and_nan_on_both_agrees():
    edge = EdgeStats(0, 1)
    mine = np.array([[np.nan, np.nan, 1.0, 100.1, 5.0, 7.0]])
    theirs = np.array([[np.nan, 3.0, np.nan, 100.1, 5.0004, 7.5]], dtype="float32")
    edge.add(mine, theirs, tolerance_mm=1e-3)  # float32's rounding (1e-6 mm here) agrees
    assert (edge.shared, edge.compared, edge.differ) == (6, 5, 3)
    edge.add(np.full((3, 1), np.nan), np.full((3, 1), np.nan), tolerance_mm=1e-3)
    assert (edge.shared, edge.compared, edge.differ) == (9, 5, 3)


#: Pixels along an edge of the sample's chips.
EDGE = 97


def block(rows, cols, wrong=None, compared=None):
    """Names, chips and edges of a rows x cols block of chips in reading order, each sharing
    an edge with its east and south neighbours. ``wrong`` maps a chip's position to what it
    holds instead of its own: chips holding different things disagree on every pixel they
    compare. ``compared`` maps a pair to how many pixels it compares (else all it shares)."""
    wrong, compared = wrong or {}, compared or {}
    chips = [Chip(474 - 20 * row, -1068 + 20 * col) for row in range(rows) for col in range(cols)]
    edges = []
    for index in range(rows * cols):
        east = [index + 1] if (index + 1) % cols else []
        south = [index + cols] if index + cols < rows * cols else []
        for other in east + south:
            counted = compared.get((index, other), EDGE)
            differ = counted if wrong.get(index) != wrong.get(other) else 0
            edges.append(EdgeStats(index, other, EDGE, counted, differ))
    return [f"{chip.name}/2020/etasw_202007.tif" for chip in chips], chips, edges


def refused_by_neighbours(rows, cols, **kwargs) -> dict[str, str]:
    return neighbour_refusals(*block(rows, cols, **kwargs))


def test_a_chip_its_neighbours_disagree_with_is_refused_naming_them_and_they_are_not():
    refused = refused_by_neighbours(3, 3, wrong={4: "January"})
    assert refused == {
        "chip45.4N-104.8E/2020/etasw_202007.tif": (
            "disagrees with 4 of its 4 neighbours where they overlap: chip47.4N-104.8E (on 100% "
            "of the 97 pixels they share with a value), chip45.4N-106.8E (100% of 97), "
            "chip45.4N-102.8E (100% of 97), chip43.4N-104.8E (100% of 97); it looks like "
            "another product's, month's or model run's file, or shifted: rerun the model for it"
        )
    }


@pytest.mark.parametrize(
    "wrong, refused",
    [
        ({0: "netet"}, [0]),  # a corner chip: two neighbours, both disagreeing
        ({1: "netet"}, [1]),  # the corner chip beside it disagrees with one of its two
        ({1: "netet", 3: "January"}, [1, 3]),  # both of the corner's: it stays
        ({4: "January", 5: "January"}, [4, 5]),  # alike, they agree with each other only
    ],
)
def test_wrong_neighbours_never_outvote_a_chip(wrong, refused):
    names = block(3, 3)[0]
    assert list(refused_by_neighbours(3, 3, wrong=wrong)) == [names[index] for index in refused]


def test_a_chain_blames_its_middle_chip_alone():
    names = block(1, 3)[0]
    assert list(refused_by_neighbours(1, 3, wrong={1: "shifted"})) == [names[1]]


def test_two_chips_that_only_each_other_can_judge_are_both_refused_naming_each_other():
    names = block(1, 2)[0]
    refused = refused_by_neighbours(1, 2, wrong={1: "January"})
    assert list(refused) == names
    assert refused[names[0]] == (
        "disagrees with chip47.4N-104.8E (on 100% of the 97 pixels they share with a value) "
        "where they overlap, and their other neighbours cannot tell which is wrong: one looks "
        "like another product's, month's or model run's file, or shifted; rerun the model for "
        "the wrong one, or for both"
    )
    assert "disagrees with chip47.4N-106.8E (on 100% of" in refused[names[1]]


def test_a_seam_that_disagrees_between_chips_their_other_neighbours_agree_with_refuses_both():
    names, chips, edges = block(3, 3)
    seam = next(edge for edge in edges if (edge.first, edge.second) == (4, 5))
    seam.differ = EDGE
    refused = neighbour_refusals(names, chips, edges)
    assert list(refused) == [names[4], names[5]]
    assert refused[names[4]].startswith("disagrees with chip45.4N-102.8E (on 100% of the 97")
    assert "their other neighbours cannot tell which is wrong" in refused[names[5]]


def test_edges_nan_on_both_sides_are_no_evidence():
    # The middle chip is a lake: along three of its edges the pair compares a handful of
    # pixels only (NaN on both sides elsewhere), and differs on them.
    few = EDGE_MIN_PIXELS - 1
    shore = {(1, 4): few, (3, 4): few, (4, 5): few}
    names, chips, edges = block(3, 3, compared=shore)
    for edge in edges:
        edge.differ = few if (edge.first, edge.second) in shore else 0
    assert neighbour_refusals(names, chips, edges) == {}
    # All NaN instead: its one comparable edge disagrees, and the chip beyond it agrees with
    # its own other neighbours.
    refused = refused_by_neighbours(3, 3, wrong={4: "all NaN"}, compared=shore)
    assert refused == {
        names[4]: "disagrees with 1 of its 1 neighbour where they overlap: chip43.4N-104.8E "
        "(on 100% of the 97 pixels they share with a value); it looks like another product's, "
        "month's or model run's file, or shifted: rerun the model for it"
    }
    # With no comparable edge at all, it is not judged.
    shore[(4, 7)] = 0
    assert refused_by_neighbours(3, 3, wrong={4: "all NaN"}, compared=shore) == {}


def test_a_pair_disagrees_on_more_than_half_of_the_pixels_it_compares():
    names, chips, edges = block(3, 3)
    for edge in edges:
        if 4 in (edge.first, edge.second):
            edge.differ = EDGE // 2  # a few odd pixels, or many: not more than half
    assert neighbour_refusals(names, chips, edges) == {}
    for edge in edges:
        edge.differ += 4 in (edge.first, edge.second)
    assert list(neighbour_refusals(names, chips, edges)) == [names[4]]


def test_chips_refused_by_their_neighbours_are_one_line_each():
    error = ChipNeighbourError({"a.tif": "disagrees with b", "b.tif": "disagrees with a"})
    assert (error.path, error.problem) == ("a.tif", "disagrees with b")
    assert str(error).splitlines() == [
        "chip a.tif: disagrees with b",
        "chip b.tif: disagrees with a",
    ]


def test_a_month_whose_overlaps_mostly_disagree_is_the_archives_not_its_chips():
    def pairs(disagreeing: int, total: int) -> list[EdgeStats]:
        return [
            EdgeStats(i, i + 1, 96, 96, 96 if i < disagreeing else 0, 0.4 if i < disagreeing else 0)
            for i in range(total)
        ]

    # One wrong chip disagrees with its four neighbours, of the 40 overlaps of 25 chips.
    assert overlaps_disagree(pairs(4, 40), 0.001) is None
    assert overlaps_disagree(pairs(20, 40), 0.001) is None
    line = overlaps_disagree(pairs(21, 40), 0.001)
    assert line.startswith("21 of its 40 overlaps between neighbouring chips disagree (values up")
    assert "to 0.4 mm apart, against plausibility.edge_tolerance_mm 0.001)" in line
    assert overlaps_disagree(pairs(3, 3), 0.001) is None  # too few to tell
    edge = EdgeStats(0, 1)
    edge.add(np.array([1.0, 2.0, np.nan]), np.array([1.25, 2.0, 3.0]), 0.001)
    assert (edge.compared, edge.differ, edge.largest) == (3, 2, 0.25)


def write_chip(path, chip: Chip, pixel: float, nan_rows: int = 0) -> str:
    """A chip file of ``chip``'s square on a lattice of ``pixel`` degrees."""
    import rasterio

    grid = chip_grid(chip, pixel)
    values = np.ones((len(grid.lats), len(grid.lons)))
    values[:nan_rows] = np.nan
    profile = dict(driver="GTiff", count=1, dtype="float64", crs="EPSG:4326")
    shape = dict(width=values.shape[1], height=values.shape[0])
    with rasterio.open(path, "w", **profile, **shape, transform=grid.transform) as chip_file:
        chip_file.write(values, 1)
    return str(path)


def test_a_baseline_reads_headers_first_and_leaves_out_files_it_cannot_use(tmp_path):
    """A file of another chip's square, one of a finer lattice than the others' (as large
    as its pixels are small), one the storage cannot fetch: left out, with why."""
    other = Chip(434, -1008)
    files = {
        CHIP.name: [
            write_chip(tmp_path / "a.tif", CHIP, 10 * MODEL_PIXEL, nan_rows=12),
            write_chip(tmp_path / "b.tif", CHIP, 10 * MODEL_PIXEL, nan_rows=24),
            write_chip(tmp_path / "shifted.tif", other, 10 * MODEL_PIXEL),
        ],
        other.name: [
            write_chip(tmp_path / "fine.tif", other, MODEL_PIXEL),
            write_chip(tmp_path / "c.tif", other, 10 * MODEL_PIXEL),
            str(tmp_path / "gone.tif"),
        ],
    }

    def fetch(path: str) -> str:
        if path.endswith("gone.tif"):
            raise ObjectRefusedError(f"cannot read {path}: 404")
        return path

    usual, skipped = usual_nan_shares(files, 20, fetch)
    assert usual == {CHIP.name: pytest.approx(12 / 97, abs=4 / 97), other.name: 0.0}
    starts = {
        "shifted.tif": "its upper-left corner is at (-100.8178, 43.4063), 95.3 pixels from its "
        "name's corner (-102.8000, 43.4000): it looks like chip43.4N-100.8E's file",
        "fine.tif": f"has CRS EPSG:4326 and pixel size {MODEL_PIXEL!r} x {MODEL_PIXEL!r}, unlike "
        "most of its tile's files",
        "gone.tif": f"cannot read {tmp_path}/gone.tif: 404",
    }
    assert {path.rsplit("/", 1)[1] for path in skipped} == set(starts)
    for path, reason in skipped.items():
        assert reason.startswith(starts[path.rsplit("/", 1)[1]]), reason


def test_a_chip_whose_blocks_exceed_it_is_refused_but_default_tiles_are_not():
    transform = footprint()[0]
    check_header("c.tif", "float32", transform, WGS84, 961, 961, EXPECTED, block=(1024, 1024))
    with pytest.raises(ChipContentError, match=r"declares blocks of 2048 x 1024 pixels, .*"
                       r"\(961 x 961\): GDAL would take 8 MiB"):  # fmt: skip
        check_header("c.tif", "float32", transform, WGS84, 961, 961, EXPECTED, block=(1024, 2048))


def test_a_header_declaring_pixels_finer_than_the_models_is_refused_before_any_read():
    # 20,000 x 20,000 pixels of 0.0001 degrees fill the chip's square exactly: the mosaic
    # would have asked GDAL for 40 GB.
    fine = Affine(1e-4, 0, -102.8, 0, -1e-4, 43.4)
    refused = r"has pixels of 0.0001 x 0.0001 degrees \(20000 x 20000 of them\), finer than"
    with pytest.raises(ChipContentError, match=refused):
        check_header("c.tif", "float64", fine, WGS84, 20000, 20000, EXPECTED, block=(1, 20000))
