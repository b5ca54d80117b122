"""The model's chip grid: chip names, the chips of a tile, the 2-degree chip lattice, and
the 10-degree tile grid, given or learned from the chips found.

A chip is named after its upper-left corner with one decimal, ``chip47.4N-106.8E``
(a negative "E" value is west). Corners are kept in integer tenths of a degree, so
lattice arithmetic is exact. A square of the tile grid is named by its upper-left chip.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import NamedTuple

from etm.errors import ConfigError, TileGridError

CHIP_NAME = re.compile(r"^chip(?P<north>-?[0-9]+\.[0-9])N(?P<west>-?[0-9]+\.[0-9])E\Z")


def to_tenths(degrees: float, what: str) -> int:
    """Convert degrees to integer tenths, refusing values that are not on a 0.1-degree step.

    Parameters
    ----------
    degrees : float
        A coordinate or a size in degrees.
    what : str
        What the value is, for the error message.

    Returns
    -------
    int
        The value in tenths of a degree.

    Raises
    ------
    ConfigError
        If the value is not a multiple of 0.1 degree.
    """
    tenths = round(degrees * 10)
    if abs(tenths - degrees * 10) > 1e-6:
        raise ConfigError(f"{what} = {degrees} is not a multiple of 0.1 degree")
    return tenths


def _format_tenths(tenths: int) -> str:
    sign = "-" if tenths < 0 else ""
    return f"{sign}{abs(tenths) // 10}.{abs(tenths) % 10}"


class Chip(NamedTuple):
    """A chip, by its upper-left corner in tenths of a degree (a tuple: a million chip
    files are keyed by it, and a tuple hashes in C)."""

    north: int
    west: int

    @property
    def name(self) -> str:
        """The chip's folder name, as the model writes it."""
        return f"chip{_format_tenths(self.north)}N{_format_tenths(self.west)}E"

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, name: str) -> Chip:
        """Parse a chip folder name, exactly as the model spells it.

        Parameters
        ----------
        name : str
            For example ``chip47.4N-106.8E``.

        Returns
        -------
        Chip

        Raises
        ------
        ValueError
            If the name does not follow the model's pattern, or spells a corner another
            way than the model does (``chip043.4N-102.8E``, ``chip-0.0N...``): such a folder
            is not the chip of that corner, whatever it holds.
        """
        match = CHIP_NAME.match(name)
        if not match:
            raise ValueError(f"{name!r} is not a chip name like 'chip47.4N-106.8E'")
        chip = cls(round(float(match["north"]) * 10), round(float(match["west"]) * 10))
        if chip.name != name:
            raise ValueError(
                f"{name!r} is not how the model names the chip of its corner, {chip.name!r}"
            )
        return chip


def chip_name(path: str) -> str:
    """The chip folder a chip file is in (``.../chip47.4N-106.8E/2020/etasw_202007.tif``)."""
    return path.replace("\\", "/").rstrip("/").split("/")[-3]


def chip_order(chip: Chip) -> tuple[int, int]:
    """Sort key: north to south, then west to east (reading order)."""
    return (-chip.north, chip.west)


def chips_in_bounds(bounds: list[float], size: int) -> list[Chip]:
    """The chips that tile a rectangle exactly.

    Parameters
    ----------
    bounds : list of float
        ``[west, south, east, north]`` in degrees.
    size : int
        Chip edge in tenths of a degree.

    Returns
    -------
    list of Chip
        In reading order.

    Raises
    ------
    ConfigError
        If the rectangle is empty or not a whole number of chips.
    """
    west, south, east, north = (to_tenths(v, "tile bound") for v in bounds)
    width, height = east - west, north - south
    if width <= 0 or height <= 0 or width % size or height % size:
        raise ConfigError(
            f"tile bounds {bounds} are not a whole number of {size / 10:g}-degree chips"
        )
    return [
        Chip(north - row * size, west + col * size)
        for row in range(height // size)
        for col in range(width // size)
    ]


def lattice_phase(chips: list[Chip], size: int) -> tuple[int, int]:
    """The chip lattice most chips sit on, as corner offsets modulo the chip size.

    Parameters
    ----------
    chips : list of Chip
        At least one chip.
    size : int
        Chip edge in tenths of a degree.

    Returns
    -------
    tuple of int
        ``(north % size, west % size)`` shared by the most chips (ties: reading order).
    """
    phases = Counter((c.north % size, c.west % size) for c in sorted(chips, key=chip_order))
    return phases.most_common(1)[0][0]


def off_lattice(chips: list[Chip], size: int) -> list[Chip]:
    """Chips whose corner is not on the lattice shared by most chips.

    Parameters
    ----------
    chips : list of Chip
    size : int
        Chip edge in tenths of a degree.

    Returns
    -------
    list of Chip
        In reading order; empty when every chip is on one lattice.
    """
    if not chips:
        return []
    phase = lattice_phase(chips, size)
    return sorted((c for c in chips if (c.north % size, c.west % size) != phase), key=chip_order)


def tile_frame(
    chips: list[Chip], size: int, tile_size: int, origin: tuple[int, int]
) -> tuple[list[Chip], list[Chip]]:
    """The square of the tile grid that holds most of a tile's chips, and the chips outside it.

    Parameters
    ----------
    chips : list of Chip
        The chips found for a tile (at least one), on one lattice.
    size : int
        Chip edge in tenths of a degree.
    tile_size : int
        Tile edge in tenths of a degree (a whole number of chips).
    origin : tuple of int
        ``(north, west)`` of any tile's upper-left corner, in tenths of a degree (a
        :class:`Chip`).

    Returns
    -------
    tuple of list of Chip
        Every chip of that square in reading order (what the tile is expected to hold),
        and the found chips outside it.
    """
    north0, west0 = origin

    def square(chip: Chip) -> tuple[int, int]:
        return ((north0 - chip.north) // tile_size, (chip.west - west0) // tile_size)

    row, col = Counter(square(c) for c in sorted(chips, key=chip_order)).most_common(1)[0][0]
    corner = Chip(north0 - row * tile_size, west0 + col * tile_size)
    outside = sorted((c for c in chips if square(c) != (row, col)), key=chip_order)
    return square_chips(corner, size, tile_size), outside


def square_chips(corner: Chip, size: int, tile_size: int) -> list[Chip]:
    """Every chip of a square of the tile grid.

    Parameters
    ----------
    corner : Chip
        The square's upper-left chip.
    size : int
        Chip edge in tenths of a degree.
    tile_size : int
        Tile edge in tenths of a degree, a whole number of chips.

    Returns
    -------
    list of Chip
        In reading order.
    """
    steps = range(0, tile_size, size)
    return [Chip(corner.north - down, corner.west + east) for down in steps for east in steps]


def bounds_text(chips: Collection[Chip], size: int) -> str:
    """The rectangle some chips cover, as ``tiles: bounds`` is written: ``[west, south,
    east, north]`` in degrees."""
    norths, wests = [c.north for c in chips], [c.west for c in chips]
    bounds = (min(wests), min(norths) - size, max(wests) + size, max(norths))
    return f"[{', '.join(_format_tenths(value) for value in bounds)}]"


#: Where a tile grid's squares sit: their corners' (north, west) modulo the tile edge.
Phase = tuple[int, int]


def grid_phase(corner: Chip, tile_size: int) -> Phase:
    """The phase of the tile grid a square (by its upper-left chip) is on."""
    return (corner.north % tile_size, corner.west % tile_size)


def candidate_squares(chips: Collection[Chip], size: int, tile_size: int) -> list[Chip]:
    """The squares of a tile's edge, with corners on the chips' lattice, that hold every chip.

    Parameters
    ----------
    chips : collection of Chip
        A tile's chips (at least one), on one chip lattice.
    size : int
        Chip edge in tenths of a degree.
    tile_size : int
        Tile edge in tenths of a degree, a whole number of chips.

    Returns
    -------
    list of Chip
        Each square's upper-left chip, in reading order: one when the chips span the tile's
        edge both ways, up to ``(tile_size / size) ** 2`` when one chip is found, none when
        they span more than a tile.
    """
    norths, wests = [c.north for c in chips], [c.west for c in chips]
    # Corners from the northmost (its square's south row on the southmost chip) down to the
    # northmost chip's row; from the westmost (east column on the eastmost chip) eastwards.
    northmost, westmost = min(norths) + tile_size - size, max(wests) - tile_size + size
    return [
        Chip(north, west)
        for north in range(northmost, max(norths) - 1, -size)
        for west in range(westmost, min(wests) + 1, size)
    ]


def grid_phases(candidates: Iterable[Sequence[Chip]], tile_size: int) -> set[Phase]:
    """The phases the tile grid can have, from every tile's candidate squares.

    Parameters
    ----------
    candidates : iterable of sequence of Chip
        Each tile's candidate squares (:func:`candidate_squares`), none empty.
    tile_size : int
        Tile edge in tenths of a degree.

    Returns
    -------
    set of Phase
        The phases on which every tile has a square; where there is none (tiles pinned to
        different phases), the phases of the tiles that have one square only.
    """
    phases = [{grid_phase(square, tile_size) for square in squares} for squares in candidates]
    common = set.intersection(*phases) if phases else set()
    return common or {next(iter(options)) for options in phases if len(options) == 1}


def learn_squares(
    found: Mapping[str, Collection[Chip]],
    placed: Mapping[str, Collection[Chip]],
    size: int,
    tile_size: int,
) -> dict[str, Chip]:
    """Each tile's square of the tile grid, learned from the chips of every tile.

    A tile's chips fit one or more squares (:func:`candidate_squares`); the grid's phases
    (:func:`grid_phases`) pick one of them. A tile whose chips fit one square keeps it, even
    if others sit on another phase.

    Parameters
    ----------
    found : mapping of str to collection of Chip
        The tiles to place: the chips found in each (at least one), on one chip lattice.
    placed : mapping of str to collection of Chip
        Tiles the config places (``tiles: bounds`` or ``chips``): their chips, evidence of
        the grid's phase only (none if they fit no square).
    size : int
        Chip edge in tenths of a degree.
    tile_size : int
        Tile edge in tenths of a degree, a whole number of chips.

    Returns
    -------
    dict of str to Chip
        The upper-left chip of each tile of ``found``'s square.

    Raises
    ------
    TileGridError
        Naming the first tile whose chips span more than a tile, or whose chips fit several
        squares that no tile's chips tell apart, or only squares on no tile's phase.
    """
    squares = {}
    for tile, chips in found.items():
        squares[tile] = candidate_squares(chips, size, tile_size)
        if not squares[tile]:
            raise _spans_more_than_a_square(tile, chips, size, tile_size)
    evidence = [candidate_squares(chips, size, tile_size) for chips in placed.values()]
    phases = grid_phases([*squares.values(), *filter(None, evidence)], tile_size)
    learned = {}
    for tile, options in squares.items():
        on_grid = [square for square in options if grid_phase(square, tile_size) in phases]
        if len(on_grid) != 1:
            raise _square_untold(tile, found[tile], len(options), bool(on_grid), size, tile_size)
        learned[tile] = on_grid[0]
    return learned


def _spans_more_than_a_square(
    tile: str, chips: Collection[Chip], size: int, tile_size: int
) -> TileGridError:
    width = max(c.west for c in chips) - min(c.west for c in chips) + size
    height = max(c.north for c in chips) - min(c.north for c in chips) + size
    return TileGridError(
        f"tile {tile}: its chips span {width / 10:g} x {height / 10:g} degrees, "
        f"{bounds_text(chips, size)}: more than one square of the {tile_size / 10:g}-degree "
        "tile grid; move or delete the chip folders that are not the tile's, or give its "
        "bounds under 'tiles'"
    )


def _square_untold(
    tile: str, chips: Collection[Chip], squares: int, any_on_grid: bool, size: int, tile_size: int
) -> TileGridError:
    why = (
        ", and no tile's chips tell which one is the tile's (did an edge row or column never "
        "run in any tile?)"
        if any_on_grid
        else ", none of them on the grid of the tiles whose chips fit one square"
    )
    return TileGridError(
        f"tile {tile}: the chips found, {bounds_text(chips, size)}, fit {squares} squares of "
        f"the {tile_size / 10:g}-degree tile grid{why}; set tile_grid.origin to [west, north] "
        "of a tile's upper-left corner, or give the tile's bounds under 'tiles'"
    )
