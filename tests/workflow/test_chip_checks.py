"""Chips with the wrong contents never reach a COG: one run over twelve months, each month
with one chip gone wrong in another way (tests/mutations.py), through the snakemake CLI."""

from __future__ import annotations

import csv
import json

import mutations
import numpy as np
import pytest
import rasterio
from conftest import TILE6, Workspace, generate, tile_year
from matplotlib.image import imread
from rio_cogeo.cogeo import cog_validate

from etm.report import COLOURS, REFUSED, SUSPECT, heatmap_cell

pytestmark = pytest.mark.slow  # several runs each (make test-fast)

YEAR = 2020
BAD = "chip43.4N-102.8E"  # the chip gone wrong, in the middle of tile6
WEST = "chip43.4N-104.8E"  # its west neighbour
#: Month: (what went wrong, the one line naming the chip, or None when it is published).
CASES = {
    # January: in a one-year archive, one of the files a chip's usual NaN share is read from.
    1: (lambda c, w: mutations.all_nan(c), "is suspect: 100% of its pixels are NaN"),
    2: (lambda c, w: mutations.copy_of(c, w), "it looks like chip43.4N-104.8E's file"),
    3: (lambda c, w: mutations.shifted(c, 30.0), "pixels from its name's corner"),
    4: (lambda c, w: mutations.resized(c, -3), "it is cut short or padded"),
    5: (lambda c, w: mutations.resized(c, 4, fill=999.0), "it is cut short or padded"),
    6: (lambda c, w: mutations.int16_with_nodata(c), "is int16; chips are float32 or float64"),
    7: (lambda c, w: mutations.with_values(c, np.inf), "infinite values or values beyond"),
    8: (lambda c, w: mutations.scale_tagged(c), "has scale 0.1 and offset 0 tags"),
    9: (lambda c, w: mutations.nodata_tag(c), None),
    10: (lambda c, w: mutations.nan_geotransform(c), "has a geotransform that is not finite"),
    11: (lambda c, w: mutations.with_values(c, -50.0), "is suspect: values from -50 to"),
    12: (lambda c, w: None, None),
}


@pytest.fixture(scope="session")
def twelve_months(tmp_path_factory):
    """etasw for every month of 2020, both tiles (tile6 is the one configured)."""
    return generate(tmp_path_factory.mktemp("months"), products=("etasw",), years=(YEAR,))


@pytest.fixture
def months(tmp_path, twelve_months) -> Workspace:
    return tile_year(twelve_months, tmp_path, YEAR)


def chip(workspace, month, name=BAD):
    return workspace.chip(TILE6, name, "etasw", YEAR, month)


def read(path):
    with rasterio.open(path) as source:
        return source.read(1), source.transform


def window_of(cog, transform, shape):
    with rasterio.open(cog) as source:
        col = round((transform.c - source.transform.c) / source.transform.a)
        row = round((source.transform.f - transform.f) / source.transform.a)
        return source.read(1, window=rasterio.windows.Window(col, row, shape[1], shape[0]))


def one_line_each(workspace, result, cases) -> list[str]:
    """The run's ``etm error`` lines, of which exactly one names the chip of each month whose
    case has a line, with that line in it, and none the chip of the other months."""
    # A job run in a process of its own writes its line to stderr while Snakemake writes
    # its own: under load the two can share a line.
    lines = result.stderr.splitlines()
    errors = [line[line.index("etm error") :] for line in lines if "etm error" in line]
    for month, (_mutate, line) in cases.items():
        named = f"etm error: chip {chip(workspace, month).relative_to(workspace.root)}: "
        mine = [error for error in errors if error.startswith(named)]
        assert len(mine) == (line is not None) and all(line in e for e in mine), (
            month,
            mine,
            result.stderr,
        )
    return errors


def published_as_read(workspace, month, original) -> list:
    """The month's tile and region COGs, which hold the chip's values where its file had
    them (as float32)."""
    values, transform = original
    cogs = []
    for kind in (f"tiles/{TILE6}", "mosaic"):
        cog = workspace.output / kind / "etasw" / f"{YEAR}" / f"etasw_{YEAR}{month:02d}.tif"
        mosaic = window_of(cog, transform, values.shape)
        assert np.array_equal(np.isnan(mosaic), np.isnan(values)), (month, kind)
        np.testing.assert_allclose(mosaic, values, rtol=1e-6)
        cogs.append(cog)
    return cogs


# With 8 cores, the jobs beyond etm.joblog.THREAD_JOBS at once run in processes of their own.
@pytest.mark.parametrize("cores", ["2", "8"])
def test_each_wrong_chip_is_refused_with_one_line_and_only_right_months_are_published(
    months, cores
):
    originals = {month: read(chip(months, month)) for month in CASES}
    for month, (mutate, _line) in CASES.items():
        mutate(chip(months, month), chip(months, month, WEST))
    result = months.snakemake("--keep-going", "--cores", cores)  # chips unchanged afterwards
    assert result.returncode == 1, result.stderr

    errors = one_line_each(months, result, CASES)
    assert len(errors) == 10, errors  # no other line: no traceback, nothing about the rest

    published = {p for p in months.published() if p.endswith(".tif")}
    assert published == {
        f"{kind}/etasw/{YEAR}/etasw_{YEAR}{month:02d}.tif"
        for month in (9, 12)
        for kind in (f"tiles/{TILE6}", "mosaic")
    }
    for cog in published:
        assert cog_validate(str(months.output / cog), quiet=True)[0], cog
    # The nodata-tagged chip is published as the model meant it: NaN where it said -9999.
    for month in (9, 12):
        for cog in published_as_read(months, month, originals[month]):
            with rasterio.open(cog) as source:
                assert np.nanmin(source.read(1)) > 0 and np.nanmax(source.read(1)) < 300
    item = json.loads(
        (months.output / "mosaic" / "etasw" / f"{YEAR}" / f"etasw_{YEAR}09.json").read_text()
    )
    assert 0 < item["assets"]["data"]["raster:bands"][0]["statistics"]["minimum"] < 300

    # The findings are in the reports and on the heatmap, and the verifier shows them.
    with open(months.reports / "chip_findings.csv") as stream:
        rows = {int(row["month"]): row["status"] for row in csv.DictReader(stream)}
    assert rows == {m: "suspect" if m in (1, 11) else "refused" for m in range(1, 12) if m != 9}
    snapshot = json.loads((months.reports / "verification.json").read_text())
    chips = snapshot["tiles"][TILE6]["chips"]
    pixels = imread(months.reports / "heatmaps" / f"{TILE6}.png")
    for month, status in rows.items():
        x, y = heatmap_cell(0, chips.index(BAD), month - 1, len(chips), len(snapshot["periods"]))
        colour = "#{:02x}{:02x}{:02x}".format(*(pixels[y, x, :3] * 255).round().astype(int))
        assert colour == COLOURS[SUSPECT if status == "suspect" else REFUSED], month
    again = months.snakemake("-n")
    assert "10 chip files refused and 2 suspect" not in again.stderr
    assert "8 chip files refused and 2 suspect when their month was last mosaicked" in again.stderr


#: Month: (how the chip's file is not a chip file, the one line naming it), or None: the
#: chip in another valid layout, published as its values say.
MASKED_ROWS = slice(40, 50)  # inside the chip: its edge rows overlap its neighbours'
NOT_CHIPS = {
    1: (mutations.two_bands, "has 2 bands; chips have one"),
    2: (mutations.web_mercator, "is in EPSG:3857; chips are on longitude and latitude"),
    3: (lambda c: mutations.masked_rows(c, MASKED_ROWS), None),
    4: (mutations.empty, "it is not a whole GeoTIFF: re-upload it"),
    5: (mutations.error_document, "it is not a whole GeoTIFF: re-upload it"),
    6: (mutations.tiled_deflate, None),
    7: (mutations.without_crs, "is in no CRS; chips are on longitude and latitude"),
    8: (mutations.coarser, "has pixel size"),
    9: (mutations.complex_values, "is complex64; chips are float32 or float64"),
    10: (mutations.png, "it is not a whole GeoTIFF: re-upload it"),  # GTiff's reader only
    11: (mutations.big_endian, None),
    12: (mutations.as_float32, None),
}


def test_files_that_are_not_chips_are_refused_and_other_valid_layouts_published(months):
    originals = {month: read(chip(months, month)) for month in NOT_CHIPS}
    # The rows its mask band leaves out, but for their ends: the columns its west and east
    # neighbours share, where their values fill the mosaic.
    originals[3][0][MASKED_ROWS, 1:-1] = np.nan
    for month, (mutate, _line) in NOT_CHIPS.items():
        mutate(chip(months, month))
    result = months.snakemake("--keep-going")
    assert result.returncode == 1, result.stderr

    errors = one_line_each(months, result, NOT_CHIPS)
    assert len(errors) == 8 and "Traceback" not in result.stderr, result.stderr

    valid = [month for month, (_mutate, line) in NOT_CHIPS.items() if line is None]
    assert {p for p in months.published() if p.endswith(".tif")} == {
        f"{kind}/etasw/{YEAR}/etasw_{YEAR}{month:02d}.tif"
        for month in valid
        for kind in (f"tiles/{TILE6}", "mosaic")
    }
    for month in valid:
        for cog in published_as_read(months, month, originals[month]):
            assert cog_validate(str(cog), quiet=True)[0], cog


def test_suspect_chips_published_on_request_and_an_all_nan_month_is_refused(months):
    mutations.with_values(chip(months, 11), -50.0)
    for name in months.config["unmosaicked_inputs"][:1]:
        for folder in (months.root / name).iterdir():
            mutations.all_nan(folder / f"{YEAR}" / f"etasw_{YEAR}12.tif")
    months.config.update(suspect_chips="warn", months=[11, 12])
    result = months.snakemake("--keep-going")
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("etm error")]
    assert errors == [
        f"etm error: tile {TILE6} etasw {YEAR}-12: every chip is all NaN; nothing was "
        "published. The model wrote files without data: rerun it for this month"
    ]
    assert "etm warning: 1 suspect chip files were used (suspect_chips: warn)" in result.stderr
    assert {p for p in months.published() if p.endswith(".tif")} == {
        f"tiles/{TILE6}/etasw/{YEAR}/etasw_{YEAR}11.tif", f"mosaic/etasw/{YEAR}/etasw_{YEAR}11.tif"
    }  # fmt: skip


def test_only_ascii_digits_and_months_1_to_12_name_a_chip_file(workspace):
    """Files beside a chip that only look like chips are not read: a newer copy under
    "２０２０" or named "etasw_2020٠7" (other scripts' digits) is not published in its place,
    and a "month 00" or "13" copy without its NaN does not become a reference month of the
    chip's usual NaN share (which would make every month of it suspect)."""
    name = "chip47.4N-116.8E"  # a third of its pixels are NaN
    july = workspace.chip("r50.0_tile5", name, "etasw", 2020, 7)
    original = read(july)
    profile, values = mutations._read(july)
    doubled = values * 2
    odd_year = july.parent.parent / "２０２０" / "etasw_２０２０07.tif"
    odd_year.parent.mkdir()
    for path in (odd_year, july.parent / "etasw_2020٠7.tif"):
        mutations._write(path, profile, doubled)
    for month in ("00", "13"):
        mutations._write(july.parent / f"etasw_2020{month}.tif", profile, np.nan_to_num(values))
    result = workspace.snakemake()
    assert result.returncode == 0, result.stderr
    assert "etm error" not in result.stderr, result.stderr
    cog = workspace.tile_cog("r50.0_tile5", "etasw", 2020, 7)
    np.testing.assert_allclose(window_of(cog, original[1], original[0].shape), original[0])
