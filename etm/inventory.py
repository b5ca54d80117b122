"""Chip inventory from one listing per prefix, and the verifier built on it.

Chip files sit at ``<tile prefix>/chip<N>N<E>E/<YYYY>/<product>_<YYYYMM>.tif``. Only
monthly files of the configured products count: ``etasw5_200803.tif`` is not an
``etasw`` chip, and daily files (``etasw_2008061.tif``, 7 digits) never match.
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from etm.config import Settings, TileSpec
from etm.errors import ChipNameError, MissingChipsError, TileGridError
from etm.grid import Chip, chip_order, learn_squares, off_lattice, square_chips, tile_frame
from etm.listing import Listing, StoredObject, join

# No "^": matched from where a prefix ends (re's match() anchors there; "^" would not).
# "\Z", not "$": "$" also matches before a final newline (a file "etasw_202007.tif\n").
# [0-9], not \d: \d matches any script's digits ("２０２０", "٠٢").
CHIP_FILE = re.compile(
    r"(?P<chip>chip[^/]*)/(?P<year>[0-9]{4})/(?P<product>[A-Za-z0-9]+)_(?P=year)"
    r"(?P<month>0[1-9]|1[0-2])\.tif\Z"
)

#: (chip, product, year, month): one chip file's identity within a tile.
ChipKey = tuple[Chip, str, int, int]


@dataclass(frozen=True)
class ChipMonth:
    """One expected chip file of a tile."""

    tile: str
    chip: Chip
    product: str
    year: int
    month: int


def chip_path(prefix: str, chip: Chip, product: str, year: int, month: int) -> str:
    """Where the model writes one chip file under a tile prefix."""
    return join(prefix, chip.name, f"{year}", f"{product}_{year}{month:02d}.tif")


@dataclass(frozen=True)
class Duplicate:
    """A chip-month found under more than one prefix: the newest object is kept."""

    tile: str
    key: ChipKey
    kept: StoredObject
    others: tuple[StoredObject, ...]


@dataclass
class TileInventory:
    """The monthly chip files found under a tile's prefixes, one per chip-month."""

    files: dict[ChipKey, StoredObject] = field(default_factory=dict)
    duplicates: list[Duplicate] = field(default_factory=list)
    chip_folders: dict[Chip, str] = field(default_factory=dict)
    #: Folders holding chip files whose name is not a chip's, and why.
    bad_folders: dict[str, str] = field(default_factory=dict)


def parse_chip_folder(name: str) -> Chip | str:
    """A chip folder's chip, or why its name is not one (see :meth:`Chip.parse`)."""
    try:
        return Chip.parse(name)
    except ValueError as error:
        return str(error)


def scan_tile(
    spec: TileSpec,
    listing: Listing,
    products: Iterable[str],
    years: Iterable[int],
    months: Iterable[int],
    subfolders: Iterable[str] = ("",),
) -> TileInventory:
    """Inventory a tile's chip files from listings of its prefixes.

    Parameters
    ----------
    spec : TileSpec
        The tile; every one of its prefixes is listed.
    listing : Listing
        The storage's listing layer.
    products, years, months : iterable
        Which chip files count.
    subfolders : iterable of str
        Folders under each prefix to list (default: the whole prefix, once).

    Returns
    -------
    TileInventory
        Where a chip-month exists under several prefixes, the newest object wins (on equal
        times, the prefix listed last in the config) and a :class:`Duplicate` is recorded.
    """
    wanted = (set(products), set(years), set(months))
    files: dict[ChipKey, StoredObject] = {}
    elsewhere: dict[ChipKey, list[StoredObject]] = {}  # the others of a chip-month
    inventory = TileInventory()
    for prefix in spec.prefixes:
        chips: dict[str, Chip | str] = {}  # one parse per folder: a million files share few
        for sub in subfolders:
            for obj in listing.walk(join(prefix, sub) if sub else prefix):
                match = CHIP_FILE.match(obj.path, len(prefix) + 1)
                if not match:
                    continue
                name, year, product, month = match.groups()
                if name not in chips:
                    chip = chips[name] = parse_chip_folder(name)
                    if isinstance(chip, str):
                        inventory.bad_folders.setdefault(join(prefix, name), chip)
                    else:
                        inventory.chip_folders.setdefault(chip, join(prefix, name))
                chip = chips[name]
                if isinstance(chip, str):
                    continue
                product = sys.intern(product)
                key = (chip, product, int(year), int(month))
                if product in wanted[0] and key[2] in wanted[1] and key[3] in wanted[2]:
                    if key in files:
                        elsewhere.setdefault(key, []).append(obj)
                    else:
                        files[key] = obj
    for key, others in elsewhere.items():
        objects = [files[key], *others]
        # max() keeps the last of equal times, i.e. the later prefix in config order.
        newest = max(reversed(objects), key=lambda obj: obj.mtime)
        files[key] = newest
        others = tuple(obj for obj in objects if obj is not newest)
        inventory.duplicates.append(Duplicate(spec.name, key, newest, others))
    inventory.files = files
    return inventory


@dataclass
class Verification:
    """Expected chips against found chips, for every configured tile, product and month."""

    settings: Settings
    expected: dict[str, tuple[Chip, ...]]
    inventories: dict[str, TileInventory]
    missing: list[ChipMonth]
    unexpected: dict[str, list[Chip]]
    truncated: list[ChipMonth]
    #: Chips listed in unproduced_chips that have files: left out of every mosaic.
    left_out: list[ChipMonth] = field(default_factory=list)
    #: Chips refused or found suspect by their month's last mosaic, still unchanged:
    #: ChipMonth to :class:`etm.findings.ChipFinding` (see :func:`etm.findings.current`).
    findings: dict = field(default_factory=dict)

    @cached_property
    def incomplete(self) -> set[tuple[str, str, int, int]]:
        """(tile, product, year, month) with at least one missing chip (asked per job)."""
        return {(m.tile, m.product, m.year, m.month) for m in self.missing}

    def found(self, chip_month: ChipMonth) -> StoredObject:
        """The file found for a chip-month (the newest, where several were)."""
        m = chip_month
        return self.inventories[m.tile].files[(m.chip, m.product, m.year, m.month)]

    def expected_path(self, missing: ChipMonth) -> str:
        """Where a missing chip was expected (under the tile's first prefix)."""
        prefix = self.settings.tiles[missing.tile].prefixes[0]
        return chip_path(prefix, missing.chip, missing.product, missing.year, missing.month)

    def chip_files(self, tile: str, product: str, year: int, month: int) -> list[StoredObject]:
        """The chip files of one tile-month, in reading order; see :func:`month_files`."""
        return month_files(tile, self.expected[tile], self.inventories[tile], product, year, month)


def month_files(
    tile: str, chips: Iterable[Chip], inventory: TileInventory, product: str, year: int, month: int
) -> list[str]:
    """The chip files of one tile-month, in the order of ``chips``.

    Raises
    ------
    MissingChipsError
        If a chip of that month is missing.
    """
    try:
        return [inventory.files[(chip, product, year, month)] for chip in chips]
    except KeyError as error:
        raise MissingChipsError(
            f"{tile} {error.args[0][0]} {product} {year}-{month:02d}: chip missing; "
            "run the verifier (snakemake -n) for the full list"
        ) from None


def undersized(files: dict[ChipKey, StoredObject]) -> list[ChipKey]:
    """Chip files smaller than most files of their chip: truncated uploads.

    Chips are uncompressed, so every whole file of a chip has the same size: the size most
    of its files share. A file under 90% of it was cut short. A chip whose files share no
    size (two files, one of them odd) gives no such size, and its jobs' checks decide: a
    file larger than usual (an extra band) must not make its siblings look cut short.

    Parameters
    ----------
    files : dict
        A tile's chip files by (chip, product, year, month).

    Returns
    -------
    list of ChipKey
    """
    sizes: dict[Chip, Counter[int]] = defaultdict(Counter)
    for (chip, *_rest), obj in files.items():
        sizes[chip][obj.size] += 1
    typical = {}
    for chip, counts in sizes.items():
        most = max(counts.values())
        if most > 1:  # the largest of the most shared sizes: a cut short pair is not whole
            typical[chip] = max(size for size, count in counts.items() if count == most)
    return [
        key for key, obj in files.items() if key[0] in typical and obj.size < 0.9 * typical[key[0]]
    ]


def _more(strays: list) -> str:
    return f" (and {len(strays) - 1} more)" if len(strays) > 1 else ""


def _checked_inventory(settings: Settings, spec: TileSpec, listing: Listing) -> TileInventory:
    """A tile's inventory, once its chip folders are known to be named as the model names
    chips, and on one chip lattice with the tile's configured chips."""
    size = settings.chip_size
    inventory = scan_tile(spec, listing, settings.products, settings.years, settings.months)
    for folder, reason in inventory.bad_folders.items():
        raise ChipNameError(folder, f"is not a chip folder: {reason}; rename or remove the folder")
    strays = off_lattice(list(inventory.chip_folders) + list(spec.chips or ()), size)
    if strays:
        folder = inventory.chip_folders.get(strays[0], strays[0].name)
        raise ChipNameError(
            folder,
            f"is off the {size / 10:g}-degree chip lattice of tile {spec.name}{_more(strays)}"
            "; move or delete it, or fix chip_size_deg",
        )
    return inventory


def _frame(settings: Settings, spec: TileSpec, inventory: TileInventory) -> list[Chip]:
    """The chips of a tile's square of the configured tile grid (``tile_grid.origin``)."""
    size, grid = settings.chip_size, settings.tile_grid
    found = list(inventory.chip_folders)
    frame, outside = tile_frame(found, size, grid.size, grid.origin)
    strays = outside or sorted(set(found) - set(frame), key=chip_order)
    if strays:
        raise ChipNameError(
            inventory.chip_folders[strays[0]],
            f"is outside the {grid.size / 10:g}-degree square of the tile grid that holds "
            f"the other chips of tile {spec.name}{_more(strays)}; move or delete it, or fix "
            "tile_grid, or list the tile's chips under 'tiles'",
        )
    return frame


def _squares(settings: Settings, inventories: dict[str, TileInventory]) -> dict[str, list[Chip]]:
    """The chips of each discovered tile's square of the tile grid (tiles without configured
    chips, with chips found): through ``tile_grid.origin``, or learned from every tile's chips.

    Raises
    ------
    ChipNameError
        If a chip is outside its tile's square of the configured tile grid.
    TileGridError
        If a tile's square cannot be learned (:func:`etm.grid.learn_squares`).
    """
    size, grid = settings.chip_size, settings.tile_grid
    discovered = [
        name
        for name, spec in settings.tiles.items()
        if spec.chips is None and inventories[name].chip_folders
    ]
    if grid.origin is not None:
        return {
            name: _frame(settings, settings.tiles[name], inventories[name]) for name in discovered
        }
    found = {name: inventories[name].chip_folders.keys() for name in discovered}
    placed = {name: spec.area for name, spec in settings.tiles.items() if spec.area}
    corners = learn_squares(found, placed, size, grid.size)
    return {name: square_chips(corner, size, grid.size) for name, corner in corners.items()}


def _expected_chips(
    settings: Settings, spec: TileSpec, inventory: TileInventory, square: list[Chip]
) -> tuple[tuple[Chip, ...], list[Chip]]:
    """Expected chips, and found chips outside the configured ones.

    A tile without configured chips expects every chip of its square of the tile grid
    but the unproduced ones, so a chip that never ran is missing, even on the edge.
    """
    if spec.chips is not None:
        outside = set(inventory.chip_folders) - set(spec.chips) - settings.unproduced
        return tuple(sorted(spec.chips, key=chip_order)), sorted(outside, key=chip_order)
    return tuple(chip for chip in square if chip not in settings.unproduced), []


def verify(settings: Settings, listing: Listing) -> Verification:
    """List every tile prefix once and find every missing chip file.

    Parameters
    ----------
    settings : Settings
    listing : Listing

    Returns
    -------
    Verification

    Raises
    ------
    ChipNameError
        If a chip folder's name is not a chip's as the model writes it, or a chip is off the
        tile's chip lattice or outside its square of the configured tile grid.
    TileGridError
        If a tile's square of the tile grid cannot be learned from the chips found.
    MissingChipsError
        If a tile without configured chips has no chips at all.
    """
    inventories = {
        name: _checked_inventory(settings, spec, listing) for name, spec in settings.tiles.items()
    }
    squares = _squares(settings, inventories)
    expected, unexpected, missing, truncated, left_out = {}, {}, [], [], []
    for name, spec in settings.tiles.items():
        inventory = inventories[name]
        chips, unexpected[name] = _expected_chips(settings, spec, inventory, squares.get(name, []))
        if not chips:
            raise MissingChipsError(
                f"tile {name}: no chips under {', '.join(spec.prefixes)}; "
                "check unmosaicked_inputs, or list the tile's chips under 'tiles'"
            )
        expected[name] = chips
        missing.extend(
            ChipMonth(name, chip, product, year, month)
            for product in settings.products
            for year in settings.years
            for month in settings.months
            for chip in chips
            if (chip, product, year, month) not in inventory.files
        )
        truncated.extend(ChipMonth(name, *key) for key in undersized(inventory.files))
        left_out.extend(
            ChipMonth(name, *key) for key in inventory.files if key[0] in settings.unproduced
        )
    check_one_tile_per_chip(expected)
    return Verification(
        settings, expected, inventories, missing, unexpected, truncated, left_out=left_out
    )


def check_one_tile_per_chip(expected: dict[str, tuple[Chip, ...]]) -> None:
    """Refuse tiles that share a chip: the region would take one tile's pixels there,
    silently.

    Raises
    ------
    TileGridError
        Naming the two tiles and the first chip they share.
    """
    owners: dict[Chip, str] = {}
    for tile, chips in expected.items():
        for chip in chips:
            if (other := owners.setdefault(chip, tile)) != tile:
                raise TileGridError(
                    f"tiles {other} and {tile} both hold {chip.name}: a chip is of one "
                    "tile, and the region would take one tile's pixels there; leave one of "
                    "them out of unmosaicked_inputs, or give their bounds under 'tiles'"
                )


class JobInventories:
    """A job process's chip files: one listing of each chip-year folder serves every job.

    A container runs a tile-year's months of every product, and each month's job asks for
    its chips: listing the tile's chip-year folders for each would send 144 times the
    listings (3,600 a container of 25 chips), where one listing holds every product.
    """

    def __init__(self, settings: Settings, listing: Listing):
        self.settings, self.listing = settings, listing
        self._years: dict[tuple[str, int], tuple[list[Chip], TileInventory]] = {}

    def month_files(self, tile: str, product: str, year: int, month: int) -> list[StoredObject]:
        """The chip files of one tile-month, from listings of that year's chip folders only
        (job processes must not list the whole archive again).

        Raises
        ------
        MissingChipsError
            If a chip of that month is missing.
        """
        if (tile, year) not in self._years:
            chips = job_chips(self.settings, self.listing, tile)
            inventory = year_inventory(
                self.settings, self.listing, tile, chips, self.settings.products, year
            )
            self._years[(tile, year)] = chips, inventory
        chips, inventory = self._years[(tile, year)]
        return month_files(tile, chips, inventory, product, year, month)


def job_chips(settings: Settings, listing: Listing, tile: str) -> list[Chip]:
    """A tile's chips in reading order, in a job process: configured, or the chip folders
    under its prefixes (one listing of folder names per prefix)."""
    spec = settings.tiles[tile]
    chips = spec.chips
    if chips is None:
        names = {name for prefix in spec.prefixes for name in listing.folders(prefix)}
        chips = tuple(c for c in map(parse_chip_folder, names) if isinstance(c, Chip))
    return sorted(chips, key=chip_order)


def year_inventory(
    settings: Settings, listing: Listing, tile: str, chips: Iterable[Chip],
    products: Iterable[str], year: int,
) -> TileInventory:  # fmt: skip
    """The chip files of a tile's products and year, from listings of its chips' year folders.

    Each listing is recorded (on S3, for the storage plugin), so what is found here is
    what Snakemake sees: after a rerun of the model, too.
    """
    subfolders = [join(chip.name, f"{year}") for chip in chips]
    return scan_tile(settings.tiles[tile], listing, products, [year], settings.months, subfolders)
