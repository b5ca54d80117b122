"""The model's chip grid: chip names, the chips of a tile, and the 2-degree chip lattice.

A chip is named after its upper-left corner with one decimal, ``chip47.4N-106.8E``
(a negative "E" value is west). Corners are kept in integer tenths of a degree, so
lattice arithmetic is exact.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import NamedTuple

from etm.errors import ConfigError

CHIP_NAME = re.compile(r"^chip(?P<north>-?\d+\.\d)N(?P<west>-?\d+\.\d)E$")


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
        ``(north, west)`` of any tile's upper-left corner, in tenths of a degree.

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
    north, west = north0 - row * tile_size, west0 + col * tile_size
    bounds = [west / 10, (north - tile_size) / 10, (west + tile_size) / 10, north / 10]
    outside = sorted((c for c in chips if square(c) != (row, col)), key=chip_order)
    return chips_in_bounds(bounds, size), outside
