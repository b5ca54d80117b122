"""Chip names, tile layouts and the chip lattice."""

import pytest

from etm.errors import ConfigError
from etm.grid import Chip, chip_order, chips_in_bounds, lattice_holes, off_lattice, to_tenths


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


def test_holes_are_lattice_positions_inside_the_bounding_box():
    chips = chips_in_bounds([-106.8, 37.4, -96.8, 47.4], 20)
    holes = [Chip(434, -1028), Chip(394, -1068)]
    found = [c for c in chips if c not in holes]
    assert lattice_holes(found, 20) == holes
    # A missing edge chip shrinks the box: it is not a hole (the stated limitation).
    assert lattice_holes([c for c in chips if c.west != -988], 20) == []


def test_the_odd_chip_out_is_off_the_lattice_whatever_its_position():
    chips = chips_in_bounds([-106.8, 37.4, -96.8, 47.4], 20)
    stray = Chip(464, -1068)
    assert off_lattice([stray, *chips], 20) == [stray]
    assert off_lattice(chips, 20) == []
