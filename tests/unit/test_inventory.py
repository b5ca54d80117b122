"""The inventory and the verifier, on empty stand-in files in temporary folders."""

import dataclasses
import os
from pathlib import Path

import pytest
import yaml

from etm.config import Settings, TileGrid, TileSpec, load_settings, read_schema
from etm.errors import ChipNameError, MissingChipsError, StorageError, TileGridError
from etm.grid import Chip, chips_in_bounds
from etm.inventory import JobInventories, scan_tile, undersized, verify
from etm.listing import LocalListing, StoredObject

LISTING = LocalListing()


def touch(path, mtime=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").close()
    if mtime is not None:
        os.utime(path, (mtime, mtime))


REPO = Path(__file__).resolve().parents[2]
SCHEMA = read_schema(REPO)
TEAM = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def settings(tiles, products=("etasw",), years=(2008,), months=(3, 4), **more) -> Settings:
    """The team's settings (chip size, a tile grid learned...), for these tiles and periods."""
    base = load_settings(dict(TEAM), SCHEMA, local=False)
    return dataclasses.replace(
        base, tiles=tiles, products=products, years=years, months=months, **more
    )


def test_only_monthly_files_of_the_exact_product_count(tmp_path):
    prefix = str(tmp_path / "run" / "r50.0_tile6")
    chip = f"{prefix}/chip47.4N-106.8E/2008"
    for name in ("etasw_200803.tif", "etasw5_200803.tif", "etasw_2008061.tif",
                 "etasw_200803.tif.aux.xml", "netet_200803.tif", "etasw_200903.tif"):  # fmt: skip
        touch(f"{chip}/{name}")
    spec = TileSpec("r50.0_tile6", (prefix,), None)
    inventory = scan_tile(spec, LISTING, ["etasw"], [2008, 2009], [3])
    assert {k: v.path for k, v in inventory.files.items()} == {
        (Chip(474, -1068), "etasw", 2008, 3): f"{chip}/etasw_200803.tif"
    }


def test_newest_object_wins_across_run_prefixes_and_is_reported(tmp_path):
    first = str(tmp_path / "Run08_18_2021" / "r50.0_tile6")
    second = str(tmp_path / "Run08_19_2021" / "r50.0_tile6")
    touch(f"{first}/chip47.4N-106.8E/2008/etasw_200803.tif", mtime=2000)
    touch(f"{second}/chip47.4N-106.8E/2008/etasw_200803.tif", mtime=1000)
    touch(f"{first}/chip47.4N-104.8E/2008/etasw_200803.tif", mtime=1000)
    touch(f"{second}/chip47.4N-104.8E/2008/etasw_200803.tif", mtime=1000)
    touch(f"{second}/chip45.4N-106.8E/2008/etasw_200803.tif", mtime=1000)
    inventory = scan_tile(TileSpec("t", (first, second), None), LISTING, ["etasw"], [2008], [3])
    used = {k[0].name: v.path for k, v in inventory.files.items()}
    assert used == {
        "chip47.4N-106.8E": f"{first}/chip47.4N-106.8E/2008/etasw_200803.tif",
        # equal times: the prefix listed last wins
        "chip47.4N-104.8E": f"{second}/chip47.4N-104.8E/2008/etasw_200803.tif",
        "chip45.4N-106.8E": f"{second}/chip45.4N-106.8E/2008/etasw_200803.tif",
    }
    assert sorted(d.key[0].name for d in inventory.duplicates) == [
        "chip47.4N-104.8E", "chip47.4N-106.8E"
    ]  # fmt: skip


def test_verify_lists_every_missing_chip_month(tmp_path):
    prefix = str(tmp_path / "r50.0_tile6")
    chips = chips_in_bounds([-106.8, 43.4, -102.8, 47.4], 20)  # 2 x 2 chips
    for chip in chips:
        for month in (3, 4):
            if (chip.name, month) != ("chip45.4N-104.8E", 4):
                touch(f"{prefix}/{chip.name}/2008/etasw_2008{month:02d}.tif")
    tiles = {"r50.0_tile6": TileSpec("r50.0_tile6", (prefix,), tuple(chips) + (Chip(474, -1028),))}
    verification = verify(settings(tiles), LISTING)
    missing = {(m.chip.name, m.month) for m in verification.missing}
    assert missing == {("chip45.4N-104.8E", 4), ("chip47.4N-102.8E", 3), ("chip47.4N-102.8E", 4)}
    assert verification.incomplete == {
        ("r50.0_tile6", "etasw", 2008, 3),
        ("r50.0_tile6", "etasw", 2008, 4),
    }
    # Asked once per job: made once (a set of every missing chip-month each time took
    # 4.5 ms with ten chips never run, minutes over a dry run's 43,200 tile-months).
    assert verification.incomplete is verification.incomplete
    assert verification.expected_path(verification.missing[0]).startswith(prefix + "/chip")


def test_complete_month_paths_in_reading_order_and_the_same_from_a_narrow_listing(tmp_path):
    prefix = str(tmp_path / "r50.0_tile6")
    chips = chips_in_bounds([-106.8, 37.4, -96.8, 47.4], 20)
    for chip in reversed(chips):
        touch(f"{prefix}/{chip.name}/2008/etasw_200803.tif")
    tiles = {"r50.0_tile6": TileSpec("r50.0_tile6", (prefix,), None)}
    verification = verify(settings(tiles, months=(3,)), LISTING)
    files = verification.chip_files("r50.0_tile6", "etasw", 2008, 3)
    assert [f.path for f in files] == [f"{prefix}/{c.name}/2008/etasw_200803.tif" for c in chips]
    jobs = JobInventories(settings(tiles), LISTING)
    assert jobs.month_files("r50.0_tile6", "etasw", 2008, 3) == files
    with pytest.raises(MissingChipsError, match="r50.0_tile6 chip47.4N-106.8E etasw 2008-04"):
        jobs.month_files("r50.0_tile6", "etasw", 2008, 4)


def test_a_job_process_lists_each_chip_year_folder_once_for_every_product_and_month(tmp_path):
    prefix = str(tmp_path / "r50.0_tile6")
    chips = chips_in_bounds([-106.8, 37.4, -96.8, 47.4], 20)
    for chip in chips:
        for product in ("etasw", "etasw5"):
            for month in (3, 4):
                touch(f"{prefix}/{chip.name}/2008/{product}_2008{month:02d}.tif")
    walked = []

    class Counting(LocalListing):
        def walk(self, folder):
            walked.append(folder)
            return super().walk(folder)

    tiles = {"r50.0_tile6": TileSpec("r50.0_tile6", (prefix,), None)}
    jobs = JobInventories(settings(tiles, products=("etasw", "etasw5")), Counting())
    for product in ("etasw", "etasw5"):
        for month in (3, 4):
            found = jobs.month_files("r50.0_tile6", product, 2008, month)
            assert [f.path.rsplit("/", 1)[1] for f in found] == [
                f"{product}_2008{month:02d}.tif"
            ] * 25
    assert sorted(walked) == sorted(f"{prefix}/{chip.name}/2008" for chip in chips)


def test_folder_that_is_not_a_chip_name_is_named(tmp_path):
    prefix = str(tmp_path / "r50.0_tile6")
    touch(f"{prefix}/chip47.4N-106.8E/2008/etasw_200803.tif")
    touch(f"{prefix}/chip47.4N-106.8/2008/etasw_200803.tif")
    tiles = {"r50.0_tile6": TileSpec("r50.0_tile6", (prefix,), None)}
    with pytest.raises(ChipNameError, match=r"chip .*/chip47.4N-106.8: is not a chip folder: "):
        verify(settings(tiles), LISTING)


def test_a_tile_with_no_chips_at_all_is_an_error_naming_its_prefix(tmp_path):
    tiles = {"r50.0_tile6": TileSpec("r50.0_tile6", (str(tmp_path / "nowhere"),), None)}
    with pytest.raises(MissingChipsError, match="tile r50.0_tile6: no chips under .*nowhere"):
        verify(settings(tiles), LISTING)


def test_a_chip_file_clearly_smaller_than_its_siblings_is_a_truncated_upload():
    west, east = Chip(474, -1068), Chip(474, -1048)
    files = {
        (chip, "etasw", 2008, month): StoredObject(f"{chip.name}/{month}", size, 0.0)
        for chip, sizes in ((west, [7400, 7400, 7400, 5000]), (east, [900, 900, 880, 900]))
        for month, size in zip(range(1, 5), sizes, strict=True)
    }
    # Chips differ in size from one another; only the cut-short file of one chip counts.
    assert undersized(files) == [(west, "etasw", 2008, 4)]


@pytest.mark.parametrize(
    ("sizes", "cut_short"),
    [
        ([7400, 14800], []),  # one file with an extra band: its sibling is whole
        ([7400, 5000], []),  # no shared size to judge by: the job's checks decide
        ([7400, 14800, 14800], [0]),
        ([5000, 5000, 7400, 7400], [0, 1]),  # a tie: the larger size is the whole one
    ],
)
def test_a_chip_size_is_the_one_most_of_its_files_share(sizes, cut_short):
    chip = Chip(474, -1068)
    files = {
        (chip, "etasw", 2008, month): StoredObject(f"{month}", size, 0.0)
        for month, size in enumerate(sizes)
    }
    assert undersized(files) == [(chip, "etasw", 2008, month) for month in cut_short]


def discovered(tmp_path, chips, months=(3,)):
    prefix = str(tmp_path / "r50.0_tile6")
    for chip in chips:
        for month in months:
            touch(f"{prefix}/{chip.name}/2008/etasw_2008{month:02d}.tif")
    return prefix, {"r50.0_tile6": TileSpec("r50.0_tile6", (prefix,), None)}


TILE6 = chips_in_bounds([-106.8, 37.4, -96.8, 47.4], 20)


#: The team's tile grid, given: tile5's upper-left chip.
TEAM_GRID = TileGrid(100, Chip(474, -1168))


@pytest.mark.parametrize("placed_by", ["tile_grid", "tile5's bounds"])
def test_a_discovered_tile_expects_its_whole_square_but_the_unproduced_chips(tmp_path, placed_by):
    # The east column never ran, and one chip is ocean, declared once: tile6's chips fit
    # two squares, and the grid given, or tile5's square under 'tiles', tells which.
    ran = [c for c in TILE6 if c.west != -988]
    ocean = Chip(394, -1068)
    _, tiles = discovered(tmp_path, [c for c in ran if c != ocean])
    more = {"unproduced": frozenset({ocean})}
    if placed_by == "tile_grid":
        more["tile_grid"] = TEAM_GRID
    else:
        tile5 = chips_in_bounds([-116.8, 37.4, -106.8, 47.4], 20)
        tiles["r50.0_tile5"] = TileSpec("r50.0_tile5", (str(tmp_path / "tile5"),), tile5, tile5)
    verification = verify(settings(tiles, months=(3,), **more), LISTING)
    missing = {m.chip for m in verification.missing if m.tile == "r50.0_tile6"}
    assert missing == {c for c in TILE6 if c.west == -988}
    assert ocean not in verification.expected["r50.0_tile6"]


def test_a_chip_folder_spelt_another_way_is_refused_by_name(tmp_path):
    prefix, tiles = discovered(tmp_path, TILE6)
    touch(f"{prefix}/chip043.4N-102.8E/2008/etasw_200803.tif")
    with pytest.raises(
        ChipNameError, match=r"chip043.4N-102.8E: is not a chip folder: .*'chip43.4N-102.8E'"
    ):
        verify(settings(tiles, months=(3,)), LISTING)


def test_a_chip_outside_the_tiles_square_of_the_grid_given_is_named(tmp_path):
    prefix, tiles = discovered(tmp_path, TILE6)
    touch(f"{prefix}/chip47.4N-96.8E/2008/etasw_200803.tif")  # the next tile's first chip
    with pytest.raises(ChipNameError, match=r"chip47.4N-96.8E: is outside the 10-degree square"):
        verify(settings(tiles, months=(3,), tile_grid=TEAM_GRID), LISTING)


def test_a_tile_whose_chips_no_square_holds_is_named_with_their_extent(tmp_path):
    prefix, tiles = discovered(tmp_path, TILE6)
    touch(f"{prefix}/chip47.4N-96.8E/2008/etasw_200803.tif")  # the next tile's first chip
    with pytest.raises(
        TileGridError, match=r"^tile r50.0_tile6: its chips span 12 x 10 degrees, \[-106.8, 37.4"
    ):
        verify(settings(tiles, months=(3,)), LISTING)


def test_a_symbolic_link_loop_is_named_not_followed_forever(tmp_path):
    prefix, tiles = discovered(tmp_path, TILE6[:1])
    os.symlink("..", f"{prefix}/{TILE6[0].name}/loop")
    with pytest.raises(StorageError, match="is a symbolic link loop"):
        verify(settings(tiles, months=(3,)), LISTING)


def test_two_tiles_holding_the_same_chips_are_refused(tmp_path):
    _, tiles = discovered(tmp_path, TILE6)
    copy = tmp_path / "alt" / "r50.0_tile7"  # tile6's chips under another tile's name
    for chip in TILE6:
        touch(f"{copy}/{chip.name}/2008/etasw_200803.tif")
    tiles["r50.0_tile7"] = TileSpec("r50.0_tile7", (str(copy),), None)
    with pytest.raises(TileGridError, match=r"^tiles r50.0_tile6 and r50.0_tile7 both hold "
                       r"chip47.4N-106.8E: a chip is of one tile"):  # fmt: skip
        verify(settings(tiles, months=(3,)), LISTING)
