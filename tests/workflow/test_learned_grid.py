"""The tile grid learned from the chips found, through the real snakemake CLI: archives on
other 10-degree phases than the team's, an edge row that never ran, and tiles no square
holds. No config here has `tiles` or `tile_grid`, as the team's."""

from __future__ import annotations

import csv
import json
import shutil

from conftest import JULY, TILE5, TILE6, Workspace, assert_chip_in_cog, generate

from etm.grid import Chip
from etm.sample import tile_chips

YEAR = 2020
#: Both tiles 2 degrees south and 4 east of the team's: another phase on both axes.
SHIFTED = {TILE5: Chip(454, -1128), TILE6: Chip(454, -1028)}
#: Side by side, tile6 2 degrees south of tile5: each tile on a phase of its own.
TWO_PHASES = {TILE5: Chip(474, -1128), TILE6: Chip(454, -1028)}


def archive(root, corners) -> Workspace:
    """Both tiles' etasw of July, at ``corners``; the config has neither tiles nor tile_grid."""
    generate(root, products=("etasw",), years=(YEAR,), months=(JULY,), corners=corners)
    workspace = Workspace(root)
    workspace.config.update(products=["etasw"], start_year=YEAR, end_year=YEAR)
    del workspace.config["tiles"]
    return workspace


def remove_north_row(workspace, tile, corners) -> list[str]:
    """Remove every chip folder of a tile's north row (a row that never ran)."""
    row = [chip.name for chip in tile_chips(tile, corners=corners)[:5]]
    for name in row:
        shutil.rmtree(workspace.root / workspace.prefix(tile) / name)
    return row


def test_tiles_on_another_phase_of_the_grid_are_published_at_their_place(tmp_path):
    workspace = archive(tmp_path, SHIFTED)
    result = workspace.snakemake()
    assert result.returncode == 0, result.stderr
    assert workspace.published() == workspace.expected_cogs()
    for tile in (TILE5, TILE6):
        cog, chips = (
            workspace.tile_cog(tile, "etasw", YEAR, JULY),
            tile_chips(tile, corners=SHIFTED),
        )
        for chip in (chips[0], chips[-1]):  # the north-west and south-east corners
            assert_chip_in_cog(workspace.chip(tile, chip.name, "etasw", YEAR, JULY), cog)


def test_tiles_on_two_phases_each_expect_the_square_their_chips_fill(tmp_path):
    workspace = archive(tmp_path, TWO_PHASES)
    result = workspace.snakemake("-n")
    assert result.returncode == 0, result.stderr
    snapshot = json.loads((workspace.reports / "verification.json").read_text())
    for tile in (TILE5, TILE6):
        expected = [chip.name for chip in tile_chips(tile, corners=TWO_PHASES)]
        assert snapshot["tiles"][tile]["chips"] == expected


def test_an_edge_row_that_never_ran_is_missing_where_another_tile_places_the_grid(tmp_path):
    workspace = archive(tmp_path, SHIFTED)
    row = remove_north_row(workspace, TILE6, SHIFTED)
    result = workspace.snakemake("-n")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert not [line for line in lines if line.startswith("etm error")], result.stderr
    for name in row:
        assert (
            f"etm: {TILE6} {name}: no file for any product or month: the model never ran for "
            "this chip; rerun it, or list the chip under unproduced_chips if it never will be "
            "produced"
        ) in lines, result.stderr
    with open(workspace.reports / "missing_chips.csv") as stream:
        assert {(r["tile"], r["chip"]) for r in csv.DictReader(stream)} == {
            (TILE6, name) for name in row
        }


def test_an_edge_row_missing_in_every_tile_asks_for_the_grid_in_one_line(tmp_path):
    workspace = archive(tmp_path, SHIFTED)
    rows = [
        *remove_north_row(workspace, TILE5, SHIFTED),
        *remove_north_row(workspace, TILE6, SHIFTED),
    ]
    result = workspace.snakemake("-n")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("etm error")]
    assert errors == [
        f"etm error: tile {TILE5}: the chips found, [-112.8, 35.4, -102.8, 43.4], fit 2 squares "
        "of the 10-degree tile grid, and no tile's chips tell which one is the tile's (did an "
        "edge row or column never run in any tile?); set tile_grid.origin to [west, north] of "
        "a tile's upper-left corner, or give the tile's bounds under 'tiles'"
    ], result.stderr
    assert not list(workspace.root.glob("reports/*/missing_chips.csv"))
    # With the grid given, the row is missing in both tiles.
    workspace.config["tile_grid"] = {"origin": [-112.8, 45.4]}
    result = workspace.snakemake("-n")
    assert result.returncode == 1
    assert not [line for line in result.stderr.splitlines() if line.startswith("etm error")]
    with open(workspace.reports / "missing_chips.csv") as stream:
        assert sorted(r["chip"] for r in csv.DictReader(stream)) == sorted(rows)


def test_a_tile_whose_chips_span_more_than_one_square_is_refused_in_one_line(tmp_path):
    workspace = archive(tmp_path, SHIFTED)
    # Tile5's east column, copied into tile6's prefix: tile6's chips span 12 degrees.
    for chip in tile_chips(TILE5, corners=SHIFTED)[4::5]:
        shutil.copytree(
            workspace.root / workspace.prefix(TILE5) / chip.name,
            workspace.root / workspace.prefix(TILE6) / chip.name,
        )
    result = workspace.snakemake("-n")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("etm error")]
    assert errors == [
        f"etm error: tile {TILE6}: its chips span 12 x 10 degrees, [-104.8, 35.4, -92.8, 45.4]: "
        "more than one square of the 10-degree tile grid; move or delete the chip folders "
        "that are not the tile's, or give its bounds under 'tiles'"
    ], result.stderr
