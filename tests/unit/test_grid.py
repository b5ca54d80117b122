"""Chip names, tile layouts, the chip lattice, and the tile grid learned from the chips."""

import pytest

from etm.errors import ConfigError, TileGridError
from etm.grid import (
    Chip,
    bounds_text,
    candidate_squares,
    chip_name,
    chip_order,
    chips_in_bounds,
    grid_phases,
    learn_squares,
    off_lattice,
    square_chips,
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


# The team's tile6 square, its upper-left chip, and its neighbour 4 degrees south-east (the
# grid's phase shifted on both axes).
TILE6, CORNER6 = chips_in_bounds([-106.8, 37.4, -96.8, 47.4], 20), Chip(474, -1068)
SHIFTED = Chip(434, -1028)


def without(chips, *, north=None, west=None):
    """Chips but a row (``north``) or a column (``west``)."""
    return [c for c in chips if c.north != north and c.west != west]


def test_a_squares_chips_are_those_of_its_bounds():
    assert square_chips(CORNER6, 20, 100) == TILE6
    assert bounds_text(TILE6, 20) == "[-106.8, 37.4, -96.8, 47.4]"
    assert bounds_text([Chip(-5, 0)], 20) == "[0.0, -2.5, 2.0, -0.5]"


def test_a_whole_tile_fits_one_square_and_fewer_chips_more():
    assert candidate_squares(TILE6, 20, 100) == [CORNER6]
    # North row never ran: the square may also be a row further south.
    assert candidate_squares(without(TILE6, north=474), 20, 100) == [CORNER6, Chip(454, -1068)]
    one = candidate_squares([Chip(394, -988)], 20, 100)  # tile6's south-east chip only
    assert len(one) == 25 and one[0] == CORNER6 and one[-1] == Chip(394, -988)
    assert one == sorted(one, key=chip_order)
    assert candidate_squares([*TILE6, Chip(474, -968)], 20, 100) == []  # 12 degrees wide


def test_the_grids_phases_are_those_every_tile_fits_else_those_of_the_pinned_tiles():
    row_missing = candidate_squares(without(TILE6, north=474), 20, 100)
    column_missing = candidate_squares(without(TILE6, west=-1068), 20, 100)
    assert grid_phases([row_missing], 100) == {(74, 32), (54, 32)}
    # One tile pins the north phase, the other the west phase.
    assert grid_phases([row_missing, column_missing], 100) == {(74, 32)}
    # Two tiles pinned to different phases: both phases.
    assert grid_phases([[CORNER6], [SHIFTED], row_missing], 100) == {(74, 32), (34, 72)}
    assert grid_phases([], 100) == set()


def test_a_whole_tile_places_the_grid_for_a_tile_missing_its_edge_row():
    found = {"whole": square_chips(SHIFTED, 20, 100), "edge gone": without(TILE6, north=474)}
    found["edge gone"] = [Chip(c.north - 40, c.west + 40) for c in found["edge gone"]]
    assert learn_squares(found, {}, 20, 100) == {"whole": SHIFTED, "edge gone": SHIFTED}


def test_a_row_missing_in_one_tile_and_a_column_in_another_place_both():
    found = {"row": without(TILE6, north=474), "column": without(TILE6, west=-1068)}
    assert learn_squares(found, {}, 20, 100) == {"row": CORNER6, "column": CORNER6}


def test_tiles_pinned_to_two_phases_keep_their_squares():
    shifted = square_chips(SHIFTED, 20, 100)
    # An east column lost in a tile on tile6's rows: only its west phase is unknown, and
    # one of the pinned phases has it.
    column_gone = without(square_chips(Chip(474, -1168), 20, 100), west=-1088)
    found = {"tile6": TILE6, "shifted": shifted, "column gone": column_gone}
    assert learn_squares(found, {}, 20, 100) == {
        "tile6": CORNER6, "shifted": SHIFTED, "column gone": Chip(474, -1168)
    }  # fmt: skip
    # One chip fits a square on each phase: it cannot be told.
    found["one chip"] = [Chip(434, -1028)]
    with pytest.raises(TileGridError, match="^tile one chip: the chips found, .* fit 25 squares"):
        learn_squares(found, {}, 20, 100)


def test_a_tile_on_none_of_the_pinned_phases_is_refused():
    off_phase = [Chip(c.north - 20, c.west) for c in without(TILE6, west=-1068)]
    with pytest.raises(TileGridError) as refused:
        learn_squares({"tile6": TILE6, "other": off_phase}, {}, 20, 100)
    assert str(refused.value) == (
        "tile other: the chips found, [-104.8, 35.4, -96.8, 45.4], fit 2 squares of the "
        "10-degree tile grid, none of them on the grid of the tiles whose chips fit one square; "
        "set tile_grid.origin to [west, north] of a tile's upper-left corner, or give the "
        "tile's bounds under 'tiles'"
    )


def test_the_same_edge_row_missing_in_every_tile_is_refused_not_guessed():
    found = {
        "tile6": without(TILE6, north=474),
        "tile7": [Chip(c.north, c.west + 100) for c in without(TILE6, north=474)],
    }
    with pytest.raises(TileGridError) as refused:
        learn_squares(found, {}, 20, 100)
    assert str(refused.value) == (
        "tile tile6: the chips found, [-106.8, 37.4, -96.8, 45.4], fit 2 squares of the "
        "10-degree tile grid, and no tile's chips tell which one is the tile's (did an edge "
        "row or column never run in any tile?); set tile_grid.origin to [west, north] of a "
        "tile's upper-left corner, or give the tile's bounds under 'tiles'"
    )


def test_tiles_the_config_places_are_evidence_of_the_grid():
    found = {"tile6": without(TILE6, north=474)}
    placed = {"tile5": chips_in_bounds([-116.8, 37.4, -106.8, 47.4], 20)}
    assert learn_squares(found, placed, 20, 100) == {"tile6": CORNER6}
    # A configured tile no square holds is no evidence, and no error.
    placed["wide"] = chips_in_bounds([-116.8, 37.4, -96.8, 47.4], 20)
    assert learn_squares(found, placed, 20, 100) == {"tile6": CORNER6}


def test_a_tile_whose_chips_span_more_than_a_square_is_refused_naming_its_extent():
    with pytest.raises(TileGridError) as refused:
        learn_squares({"tile6": [*TILE6, Chip(474, -968)]}, {}, 20, 100)
    assert str(refused.value) == (
        "tile tile6: its chips span 12 x 10 degrees, [-106.8, 37.4, -94.8, 47.4]: more than "
        "one square of the 10-degree tile grid; move or delete the chip folders that are not "
        "the tile's, or give its bounds under 'tiles'"
    )
