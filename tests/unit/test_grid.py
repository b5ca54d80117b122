"""Chip names, tile layouts and the chip lattice."""

import pytest

from etm.errors import ConfigError
from etm.grid import (
    Chip,
    chip_name,
    chip_order,
    chips_in_bounds,
    off_lattice,
    tile_frame,
    to_tenths,
)


@pytest.mark.parametrize(
    "name, north, west",
    [("chip47.4N-106.8E", 474, -1068), ("chip-0.5N0.0E", -5, 0), ("chip10.0N120.2E", 100, 1202)],
)
def test_chip_names_round_trip(name, north, west):
    chip = Chip.parse(name)
    assert (chip.north, chip.west) == (north, west)
    assert chip.name == name


@pytest.mark.parametrize("name", ["chip47N-106E", "chip47.40N-106.8E", "47.4N-106.8E", "chipXN"])
def test_names_not_written_by_the_model_are_refused(name):
    with pytest.raises(ValueError, match="is not a chip name"):
        Chip.parse(name)


@pytest.mark.parametrize(
    "name, canonical",
    [("chip043.4N-102.8E", "chip43.4N-102.8E"), ("chip43.4N-0102.8E", "chip43.4N-102.8E"),
     ("chip-0.0N10.0E", "chip0.0N10.0E")],
)  # fmt: skip
def test_another_spelling_of_a_corner_is_not_that_chip(name, canonical):
    with pytest.raises(
        ValueError, match=f"not how the model names the chip of its corner, '{canonical}'"
    ):
        Chip.parse(name)


def test_a_chip_file_names_its_chip_folder():
    assert chip_name("ws-out/USA/r/t/chip47.4N-106.8E/2020/etasw_202007.tif") == "chip47.4N-106.8E"


def test_a_ten_degree_tile_has_25_chips_named_by_upper_left_corner():
    chips = chips_in_bounds([-106.8, 37.4, -96.8, 47.4], 20)
    assert len(chips) == 25
    assert chips[0].name == "chip47.4N-106.8E"
    assert chips[4].name == "chip47.4N-98.8E"
    assert chips[-1].name == "chip39.4N-98.8E"
    assert chips == sorted(chips, key=chip_order)


@pytest.mark.parametrize("bounds", [[-106.8, 37.4, -97.8, 47.4], [-106.8, 47.4, -96.8, 37.4]])
def test_bounds_that_are_not_whole_chips_are_a_config_error(bounds):
    with pytest.raises(ConfigError, match="not a whole number of 2-degree chips"):
        chips_in_bounds(bounds, 20)


def test_degrees_off_the_tenth_grid_are_refused():
    assert to_tenths(-106.8, "x") == -1068
    with pytest.raises(ConfigError, match="x = 47.45 is not a multiple of 0.1 degree"):
        to_tenths(47.45, "x")


def test_a_tiles_frame_is_its_square_of_the_tile_grid_even_with_its_edges_missing():
    chips = chips_in_bounds([-106.8, 37.4, -96.8, 47.4], 20)
    origin = (474, -1168)  # the team's r50.0_tile5 corner: tile6 is the next square east
    found = [c for c in chips if c.west != -988 and c.north != 474]  # east and north edges gone
    frame, outside = tile_frame(found, 20, 100, origin)
    assert frame == chips and outside == []
    stray = Chip(474, -948)  # one square further east
    frame, outside = tile_frame([*found, stray], 20, 100, origin)
    assert frame == chips and outside == [stray]


def test_the_odd_chip_out_is_off_the_lattice_whatever_its_position():
    chips = chips_in_bounds([-106.8, 37.4, -96.8, 47.4], 20)
    stray = Chip(464, -1068)
    assert off_lattice([stray, *chips], 20) == [stray]
    assert off_lattice(chips, 20) == []
