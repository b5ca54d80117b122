"""The verifier through the real snakemake CLI: missing chips, skip, split runs, duplicates,
and the heatmaps it draws."""

from __future__ import annotations

import csv
import json
import os
import shutil

import numpy as np
import pystac
import pytest
import rasterio
from conftest import JULY, TILE5, TILE6, rewrite_chip
from matplotlib.image import imread

from etm.report import COLOURS, MISSING, PRESENT, heatmap_cell

# Three removals in different tiles, products and years; one is a whole year folder.
REMOVED_FILE_5 = (TILE5, "chip45.4N-114.8E", "etasw", 2020)
REMOVED_FILE_6 = (TILE6, "chip41.4N-100.8E", "netet", 2021)
REMOVED_YEAR_5 = (TILE5, "chip43.4N-112.8E", 2021)


def remove_three_chips(workspace):
    os.remove(workspace.chip(*REMOVED_FILE_5, JULY))
    os.remove(workspace.chip(*REMOVED_FILE_6, JULY))
    shutil.rmtree(workspace.chip(REMOVED_YEAR_5[0], REMOVED_YEAR_5[1], "etasw", 2021, JULY).parent)


def test_dry_run_lists_every_missing_chip_and_refuses_to_start(workspace):
    remove_three_chips(workspace)
    result = workspace.snakemake("-n")
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    for expected in (
        f"etm: {TILE5} chip45.4N-114.8E etasw 2020: 07",
        f"etm: {TILE5} chip43.4N-112.8E etasw 2021: 07",
        f"etm: {TILE5} chip43.4N-112.8E netet 2021: 07",
        f"etm: {TILE6} chip41.4N-100.8E netet 2021: 07",
    ):
        assert expected in lines, result.stderr
    assert "4 chip files missing; no job was started" in result.stderr
    with open(workspace.reports / "missing_chips.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert {(r["tile"], r["chip"], r["product"], r["year"], r["month"]) for r in rows} == {
        (TILE5, "chip45.4N-114.8E", "etasw", "2020", "7"),
        (TILE5, "chip43.4N-112.8E", "etasw", "2021", "7"),
        (TILE5, "chip43.4N-112.8E", "netet", "2021", "7"),
        (TILE6, "chip41.4N-100.8E", "netet", "2021", "7"),
    }
    assert all(not os.path.exists(workspace.root / r["expected_path"]) for r in rows)
    assert workspace.chip(*REMOVED_FILE_5, JULY) == workspace.root / rows[0]["expected_path"]
    # A real run refuses too, and publishes nothing.
    assert workspace.snakemake().returncode != 0
    assert workspace.published() == set()


def test_skip_builds_every_complete_month_and_nothing_else(workspace):
    remove_three_chips(workspace)
    workspace.config["missing_chips"] = "skip"
    result = workspace.snakemake()
    assert result.returncode == 0, result.stderr
    assert "4 chip files missing; their months were left out" in result.stderr
    incomplete = {
        (TILE5, "etasw", 2020, JULY),
        (TILE5, "etasw", 2021, JULY),
        (TILE5, "netet", 2021, JULY),
        (TILE6, "netet", 2021, JULY),
    }
    assert workspace.published() == workspace.expected_cogs(incomplete)
    assert workspace.published() == {
        f"tiles/{TILE5}/netet/2020/netet_202007.tif",
        f"tiles/{TILE6}/etasw/2020/etasw_202007.tif",
        f"tiles/{TILE6}/netet/2020/netet_202007.tif",
        f"tiles/{TILE6}/etasw/2021/etasw_202107.tif",
        "mosaic/netet/2020/netet_202007.tif",
    }


def test_a_chip_that_never_ran_is_missing_even_on_the_edge_of_a_discovered_tile(workspace):
    # tile6 has no `tiles:` entry, as in the team's config; its north-east chip never ran.
    edge = "chip47.4N-98.8E"
    shutil.rmtree(workspace.chip(TILE6, edge, "etasw", 2020, JULY).parent.parent)
    result = workspace.snakemake("-n")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert (
        f"etm: {TILE6} {edge}: no file for any product or month: the model never ran for this "
        "chip; rerun it, or list the chip under unproduced_chips if it never will be produced"
    ) in lines
    assert not [line for line in lines if line.startswith(f"etm: {TILE6} {edge} ")]
    with open(workspace.reports / "missing_chips.csv") as stream:
        assert sum(row["chip"] == edge for row in csv.DictReader(stream)) == 4
    # Declared once as a chip the model never produces, it is not missing.
    workspace.config["unproduced_chips"] = [edge]
    assert workspace.snakemake("-n").returncode == 0


def test_systematic_gaps_get_one_line_each_before_the_scattered_ones(workspace):
    os.remove(workspace.chip(*REMOVED_FILE_6, JULY))
    workspace.config.update(products=["etasw", "netet", "etc"], end_year=2022)
    result = workspace.snakemake("-n")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("etm: ")]
    # After the config's notes (here: no license terms), the summary, then the gaps.
    lines = lines[next(i for i, line in enumerate(lines) if "chip files expected" in line) :]
    assert lines[1:4] == [
        "etm: no etc chips at all in any tile: is etc among this run's products?",
        "etm: 2022: no chips in any tile",
        f"etm: {TILE6} chip41.4N-100.8E netet 2021: 07",
    ], lines
    assert lines[4].startswith("etm: 251 chip files missing; no job was started")


def chip_values(path):
    with rasterio.open(path) as src:
        return src.read(1), src.transform


def cog_window(cog, transform, shape):
    with rasterio.open(cog) as src:
        col = (transform.c - src.transform.c) / src.transform.a
        row = (src.transform.f - transform.f) / src.transform.a
        window = rasterio.windows.Window(round(col), round(row), shape[1], shape[0])
        return src.read(1, window=window)


def test_split_runs_and_duplicates_newest_wins(workspace):
    later = "Run08_19_2021"
    # Row 41.4N of tile6 was written by containers that stamped the next day.
    for chip in ("chip41.4N-106.8E", "chip41.4N-104.8E", "chip41.4N-102.8E"):
        source = workspace.root / workspace.prefix(TILE6) / chip
        shutil.move(source, workspace.root / workspace.prefix(TILE6, run=later) / chip)
    # A newer re-upload under the later prefix wins over the original...
    newer = workspace.chip(TILE6, "chip45.4N-104.8E", "etasw", 2020, JULY, run=later)
    os.makedirs(newer.parent)
    shutil.copy(workspace.chip(TILE6, "chip45.4N-104.8E", "etasw", 2020, JULY), newer)
    rewrite_chip(newer, scale=2.0)
    # ...and an older copy under the later prefix loses to the original.
    older = workspace.chip(TILE6, "chip39.4N-98.8E", "netet", 2021, JULY, run=later)
    os.makedirs(older.parent)
    shutil.copy(workspace.chip(TILE6, "chip39.4N-98.8E", "netet", 2021, JULY), older)
    rewrite_chip(older, scale=3.0)
    os.utime(older, (1e9, 1e9))
    workspace.config["unmosaicked_inputs"].append(workspace.prefix(TILE6, run=later))

    result = workspace.snakemake()
    assert result.returncode == 0, result.stderr
    assert workspace.published() == workspace.expected_cogs()
    assert "2 chip files exist under more than one run prefix; the newest was used" in result.stderr
    with open(workspace.reports / "duplicate_chips.csv") as stream:
        used = {row["used_path"] for row in csv.DictReader(stream)}
    assert used == {
        str(newer.relative_to(workspace.root)),
        workspace.prefix(TILE6) + "chip39.4N-98.8E/2021/netet_202107.tif",
    }
    # Inside the chip the winner's values; on its edges, shared with its neighbours, the
    # original's in both (rewrite_chip scales the inside only).
    for chip_path, product, year in ((newer, "etasw", 2020), (older, "netet", 2021)):
        values, transform = chip_values(chip_path)
        window = cog_window(workspace.tile_cog(TILE6, product, year, JULY), transform, values.shape)
        original = values.copy()
        original[1:-1, 1:-1] /= 2.0 if chip_path == newer else 3.0
        winner = values if chip_path == newer else original
        np.testing.assert_allclose(window, winner, rtol=1e-6)
    moved = workspace.chip(TILE6, "chip41.4N-104.8E", "netet", 2021, JULY, run=later)
    values, transform = chip_values(moved)
    window = cog_window(workspace.tile_cog(TILE6, "netet", 2021, JULY), transform, values.shape)
    np.testing.assert_allclose(window, values, rtol=1e-6)


def cell_colour(
    pixels: np.ndarray, panel: int, row: int, column: int, chips: int, periods: int
) -> str:
    x, y = heatmap_cell(panel, row, column, chips, periods)
    red, green, blue = (pixels[y, x, :3] * 255).round().astype(int)
    return f"#{red:02x}{green:02x}{blue:02x}"


@pytest.mark.slow  # two runs; make test runs it
def test_heatmaps_mark_exactly_the_removed_chips_and_unpublished_months_have_no_item(workspace):
    removed = [
        (TILE6, "chip45.4N-104.8E", "netet", 2021, 7),
        (TILE5, "chip39.4N-112.8E", "etasw", 2020, 7),
    ]
    for tile, chip, product, year, month in removed:
        workspace.chip(tile, chip, product, year, month).unlink()
    refused = workspace.snakemake("-n")
    assert refused.returncode == 1
    # The run is refused, but the heatmaps were drawn for the operator.
    assert (workspace.reports / "heatmaps" / f"{TILE6}.png").is_file()
    workspace.config["missing_chips"] = "skip"
    result = workspace.snakemake()
    assert result.returncode == 0, result.stderr
    snapshot = json.loads((workspace.reports / "verification.json").read_text())
    periods = snapshot["periods"]
    for tile in (TILE5, TILE6):
        chips = snapshot["tiles"][tile]["chips"]
        pixels = imread(workspace.reports / "heatmaps" / f"{tile}.png")
        for panel, product in enumerate(("etasw", "netet")):
            for row, chip in enumerate(chips):
                for column, period in enumerate(periods):
                    year, month = int(period[:4]), int(period[5:])
                    status = MISSING if (tile, chip, product, year, month) in removed else PRESENT
                    colour = cell_colour(pixels, panel, row, column, len(chips), len(periods))
                    assert colour == COLOURS[status], (tile, chip, product, period)
    output = workspace.output
    assert not (output / "tiles" / TILE6 / "netet" / "2021" / "netet_202107.json").exists()
    assert not (output / "mosaic" / "netet" / "2021" / "netet_202107.json").exists()
    assert (output / "tiles" / TILE5 / "netet" / "2021" / "netet_202107.json").exists()
    catalog = pystac.Catalog.from_file(str(output / "catalog.json"))
    ids = {item.id for item in catalog.get_items(recursive=True)}
    assert f"{TILE6}_netet_202107" not in ids and f"{TILE5}_netet_202107" in ids
    assert len(ids) == len(workspace.expected_cogs({r[0:1] + r[2:] for r in removed}))
