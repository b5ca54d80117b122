"""What makes a chip file the chip its name says, checked where its month's mosaic reads it.

A chip is refused (its month is not published; the other months are) when its header
or values cannot be those of the chip its folder names:

- one band of float32 or float64 (the model writes float64, NaN where it has no value),
  holding millimetres as stored: no scale or offset tag, no unit tag other than mm;
- a finite, north-up geotransform;
- its footprint: the chip's named square on the master lattice, each edge within a pixel
  of the square's either way (chips cut with nearest, outward or inward rounding);
- no infinite value, and none beyond the range of the output type. A nodata tag, or a
  mask band, is honoured: the tagged value, or what the pixels the mask leaves out hold,
  is missing (NaN), never data.

A chip is also refused when its neighbours disagree with it (:func:`neighbour_refusals`):
chips cut outward overlap their neighbours by a pixel, the same master pixel computed by
the model twice, equal where it is deterministic. A chip of another product, month or model
run, or shifted, disagrees with its neighbours on nearly every pixel they share.

A chip is *suspect* when its values are possible but implausible (:func:`suspicion`):
outside its product's valid range, or far more NaN than its usual share. The checks use
only the header and the pixels the mosaic reads anyway.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from etm.errors import (
    ChipContentError,
    ChipError,
    ObjectRefusedError,
    SuspectChipError,
    one_line,
)
from etm.grid import Chip

log = logging.getLogger(__name__)

#: Pixel types a chip may have.
FLOAT_TYPES = ("float32", "float64")
#: Unit tags a chip may carry (the model writes none; every product is in mm).
MM_UNITS = ("", "mm", "millimeter", "millimeters", "millimetre", "millimetres")
#: How far a chip's edges may lie from its named square's, in pixels, either way: chips
#: cut from the master lattice with nearest, outward or inward rounding.
EDGE_SLACK_PX = 1.0
#: Slack on that tolerance, for rounding in the stored geotransform.
CORNER_SLACK_PX = 1e-6
#: A block may exceed a small chip up to this many pixels (GDAL's default tiles are 256²).
MAX_BLOCK_PIXELS = 1024 * 1024
#: The finest pixel a chip may have, in degrees: half the model's lattice step
#: (0.0020810045). A finer one is no chip of the model's, and a header can declare any size:
#: 20,000 x 20,000 pixels of 0.0001 degrees in a 13 kB sparse file fill a 2-degree square.
FINEST_PIXEL_DEG = 0.001
#: Pixels with a value (in either chip) that a pair must share for it to count: corners
#: (at most 2 x 2 pixels) and edges NaN on both sides but for a handful of pixels are no
#: evidence either way. A chip's edge is 961 pixels (97 in the sample).
EDGE_MIN_PIXELS = 16


@dataclass(frozen=True)
class ChipExpectation:
    """The chip a source file must be: its corner and edge, in tenths of a degree."""

    chip: Chip
    size: int


@dataclass
class ChipStats:
    """What a chip's pixels held: NaN and valid counts, smallest and largest valid value."""

    nan: int = 0
    valid: int = 0
    minimum: float = math.inf
    maximum: float = -math.inf

    @property
    def nan_share(self) -> float:
        """Share of the chip's pixels that are NaN (0 to 1)."""
        total = self.nan + self.valid
        return self.nan / total if total else 1.0

    def add(self, values: np.ndarray) -> None:
        """Count a block of a chip's pixels (NaN for missing)."""
        valid = values[~np.isnan(values)]
        self.nan += values.size - valid.size
        self.valid += valid.size
        if valid.size:
            self.minimum = min(self.minimum, float(valid.min()))
            self.maximum = max(self.maximum, float(valid.max()))


@dataclass
class EdgeStats:
    """What two overlapping chips hold on the pixels they share.

    ``first`` and ``second`` are the chips' positions among the mosaic's sources. Of the
    ``shared`` pixels, ``compared`` are those where at least one chip has a value (NaN on
    both sides agrees, but says nothing), and ``differ`` those where exactly one has a
    value, or both have values further apart than the tolerance.
    """

    first: int
    second: int
    shared: int = 0
    compared: int = 0
    differ: int = 0
    #: The largest difference between two values, in mm.
    largest: float = 0.0

    def add(self, first: np.ndarray, second: np.ndarray, tolerance_mm: float) -> None:
        """Count a block of the shared pixels: each chip's values (NaN for missing), as
        stored (float32 or float64), and the largest difference that agrees."""
        first_nan, second_nan = np.isnan(first), np.isnan(second)
        gaps = np.abs(first.astype("float64") - second)
        with np.errstate(invalid="ignore"):  # NaN on either side: not "apart"
            apart = gaps > tolerance_mm
        self.shared += first.size
        self.compared += first.size - int((first_nan & second_nan).sum())
        self.differ += int((first_nan != second_nan).sum()) + int(apart.sum())
        if apart.any():
            self.largest = max(self.largest, float(np.nanmax(gaps)))


def _corner_text(west: float, north: float) -> str:
    return f"({west:.4f}, {north:.4f})"


def check_header(
    name: str,
    dtype: str,
    transform,
    crs,
    width: int,
    height: int,
    expected: ChipExpectation,
    *,
    block: tuple[int, int],
    scale: float = 1.0,
    offset: float = 0.0,
    unit: str = "",
) -> None:
    """Refuse a chip whose header is not its chip's.

    Parameters
    ----------
    name : str
        What errors call the chip (its path as the config spells its prefix).
    dtype : str
        Its pixel type.
    transform : affine.Affine
    crs : rasterio.crs.CRS or None
    width, height : int
        Its size in pixels.
    expected : ChipExpectation
        The chip its folder names.
    block : tuple of int
        Its band's block (rows, columns): GDAL reads a whole block at a time.
    scale, offset, unit : float, float, str
        Its band's scale, offset and unit tags (GDAL's defaults when untagged).

    Raises
    ------
    ChipContentError
        Naming the chip and what is wrong.
    """
    if dtype not in FLOAT_TYPES:
        raise ChipContentError(
            name, f"is {dtype}; chips are float32 or float64 with NaN where there is no value"
        )
    if scale != 1.0 or offset != 0.0:
        raise ChipContentError(
            name,
            f"has scale {scale:g} and offset {offset:g} tags: its stored values are not mm; "
            "chips hold mm with no scale or offset (rewrite it, or rerun the chip)",
        )
    if unit.strip().lower() not in MM_UNITS:
        raise ChipContentError(name, f"is tagged in {unit!r}; every product is in mm")
    rows, columns = block
    if rows * columns > max(width * height, MAX_BLOCK_PIXELS):
        raise ChipContentError(
            name,
            f"declares blocks of {columns} x {rows} pixels, larger than the chip itself "
            f"({width} x {height}): GDAL would take "
            f"{rows * columns * np.dtype(dtype).itemsize / 2**20:,.0f} MiB to "
            "read one; rewrite it with blocks of at most its size, or rerun the chip",
        )
    coefficients = tuple(transform)[:6]
    if not all(math.isfinite(value) for value in coefficients):
        raise ChipContentError(name, f"has a geotransform that is not finite: {coefficients}")
    if transform.b or transform.d or transform.a <= 0 or transform.e >= 0:
        raise ChipContentError(name, f"is not a north-up grid (transform {coefficients})")
    if crs is None or crs.to_epsg() != 4326:  # a grad unit, another datum or body: not ours
        raise ChipContentError(
            name,
            f"is in {crs.to_string() if crs else 'no CRS'}; chips are on longitude and "
            "latitude (EPSG:4326): rerun the chip",
        )
    if min(transform.a, -transform.e) < FINEST_PIXEL_DEG:
        raise ChipContentError(
            name,
            f"has pixels of {transform.a:g} x {-transform.e:g} degrees ({width} x {height} of "
            f"them), finer than any chip of the model's (at least {FINEST_PIXEL_DEG:g}; its "
            "lattice's are 0.0020810045): it is not this chip's file, rerun the chip",
        )
    check_footprint(name, transform, width, height, expected)


def check_footprint(name: str, transform, width: int, height: int, expected: ChipExpectation):
    """Refuse a chip whose footprint is not its name's square, give or take a pixel a side.

    Chips are cut from one master lattice: their edges fall on its lines, up to a pixel
    outside their named square (outward rounding: ``rasterio.mask(crop=True)``,
    ``gdalwarp -tap``), inside it (inward rounding) or either (nearest). Beyond a pixel
    on any side, the file is another chip's, shifted, cut short or padded.

    Raises
    ------
    ChipContentError
    """
    chip = expected.chip
    west, north, edge = chip.west / 10, chip.north / 10, expected.size / 10
    xres, yres = transform.a, -transform.e
    # How far each edge lies outside the named square, in pixels (negative: inside).
    left, top = (west - transform.c) / xres, (transform.f - north) / yres
    if max(abs(left), abs(top)) > EDGE_SLACK_PX + CORNER_SLACK_PX:
        corner = Chip(round(transform.f * 10), round(transform.c * 10))
        near = max(
            abs(corner.west / 10 - transform.c) / xres, abs(corner.north / 10 - transform.f) / yres
        )
        whose = (
            f"it looks like {corner.name}'s file" if near <= EDGE_SLACK_PX else "it is another file"
        )
        raise ChipContentError(
            name,
            f"its upper-left corner is at {_corner_text(transform.c, transform.f)}, "
            f"{math.hypot(left, top):.1f} pixels from its name's corner "
            f"{_corner_text(west, north)}: {whose}, not this chip's",
        )
    right = (transform.c + width * xres - (west + edge)) / xres
    bottom = ((north - edge) - (transform.f - height * yres)) / yres
    for side, beyond in (("east", right), ("south", bottom)):
        if abs(beyond) > EDGE_SLACK_PX + CORNER_SLACK_PX:
            where = "beyond" if beyond > 0 else "short of"
            raise ChipContentError(
                name,
                f"is {width} x {height} pixels: its {side} edge is {abs(beyond):.1f} pixels "
                f"{where} its {edge:g}-degree square's (at most one pixel either way, as cut "
                "from the master lattice): it is cut short or padded, not this chip's file",
            )


def clean_values(
    name: str, values: np.ndarray, nodata: float | None, dtype: str, mask: np.ndarray | None = None
) -> None:
    """Turn a chip's nodata value, and the pixels its mask band leaves out, into NaN, in
    place; refuse infinite values.

    Parameters
    ----------
    name : str
    values : numpy.ndarray
        A block of the chip's pixels, in its own floating-point type.
    nodata : float or None
        Its nodata tag.
    dtype : str
        The mosaic's pixel type: values beyond its range would become infinite.
    mask : numpy.ndarray, optional
        The block of the chip's mask band (GDAL's, 0 where a pixel has no value), if it has
        one: whatever such a pixel holds is not a value.

    Raises
    ------
    ChipContentError
    """
    if nodata is not None and not math.isnan(nodata):
        values[values == nodata] = np.nan
    if mask is not None:
        values[mask == 0] = np.nan
    limit = np.finfo(dtype).max
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(values) <= limit) & ~np.isnan(values)
    if bad.any():
        example = float(values[bad][0])
        raise ChipContentError(
            name,
            f"has {int(bad.sum())} infinite values or values beyond the range of {dtype} "
            f"(e.g. {example:g}); rewrite it with NaN where the model has no value",
        )


def suspicion(
    stats: ChipStats,
    valid_range: tuple[float, float],
    usual_nan_share: float | None,
    nan_share_jump: float,
) -> str | None:
    """Why a chip's values are implausible, or None.

    Parameters
    ----------
    stats : ChipStats
        Its pixels.
    valid_range : tuple of float
        Its product's valid values, in mm.
    usual_nan_share : float or None
        Its usual share of NaN pixels (None: not known).
    nan_share_jump : float
        How far above its usual share a NaN share is suspect.

    Returns
    -------
    str or None
    """
    low, high = valid_range
    if stats.valid and (stats.minimum < low or stats.maximum > high):
        return (
            f"values from {stats.minimum:g} to {stats.maximum:g} mm, outside its product's "
            f"valid range [{low:g}, {high:g}]"
        )
    if usual_nan_share is not None and stats.nan_share > usual_nan_share + nan_share_jump:
        return (
            f"{stats.nan_share:.0%} of its pixels are NaN, where it usually has "
            f"{usual_nan_share:.0%}: the model wrote the file but not its data"
        )
    return None


@dataclass
class Findings:
    """Chips of one mosaic that were refused or found suspect, with why."""

    refused: dict[str, str] = field(default_factory=dict)
    suspect: dict[str, str] = field(default_factory=dict)

    def as_records(self) -> list[dict]:
        """One record per chip: ``{"chip": path, "status": ..., "reason": ...}``."""
        return [
            {"chip": chip, "status": status, "reason": reason}
            for status, found in (("refused", self.refused), ("suspect", self.suspect))
            for chip, reason in found.items()
        ]


@dataclass(frozen=True)
class ChipPolicy:
    """How a tile-month's chips are judged: its product's valid range, the NaN-share jump,
    whether a suspect chip blocks the month (``error``) or is published (``warn``), and how
    far apart two chips' values of one shared pixel may be (mm)."""

    valid_range: tuple[float, float]
    nan_share_jump: float
    suspect_chips: str
    edge_tolerance_mm: float


@dataclass(frozen=True)
class ChipChecks:
    """How a tile-month's chips are checked: each source's chip name, in order, the chip
    edge in tenths of a degree, and the plausibility policy."""

    chips: tuple[str, ...]
    chip_size: int
    policy: ChipPolicy


def judge(
    names: list[str],
    chips: list[Chip],
    stats: tuple[ChipStats, ...],
    usual: dict[str, float],
    policy: ChipPolicy,
    findings: Findings,
) -> list[str]:
    """Find a tile-month's suspect chips, recording them in ``findings``.

    Parameters
    ----------
    names : list of str
        What errors call each chip.
    chips : list of Chip
        Each one's chip, in the same order.
    stats : tuple of ChipStats
        What each one's pixels held.
    usual : dict
        Usual NaN share by chip name (see :func:`usual_nan_shares`); a chip not in it is
        judged on its values only.
    policy : ChipPolicy
    findings : Findings

    Returns
    -------
    list of str
        One warning line per suspect chip, when suspect chips are published.

    Raises
    ------
    SuspectChipError
        Naming the first suspect chip, when suspect chips block their month.
    """
    for name, chip, chip_stats in zip(names, chips, stats, strict=True):
        reason = suspicion(
            chip_stats, policy.valid_range, usual.get(chip.name), policy.nan_share_jump
        )
        if reason:
            findings.suspect[name] = reason
    if findings.suspect and policy.suspect_chips == "error":
        (first, reason), more = next(iter(findings.suspect.items())), len(findings.suspect) - 1
        raise SuspectChipError(
            first,
            f"is suspect: {reason}"
            + (f" (and {more} more chips)" if more else "")
            + "; rerun the model for it, or set suspect_chips: warn to publish suspect chips",
        )
    return [
        f"chip {name}: suspect, published: {reason}" for name, reason in findings.suspect.items()
    ]


#: A pair of overlapping chips disagrees when more than this share of the pixels they share
#: with a value (in either) differ. A file of another product, month or model run, or a
#: shifted one, differs on nearly all of them (the sample's: all); a deterministic overlap
#: on none. Half leaves the widest margin both ways: a few odd pixels (spikes, a partly
#: masked edge) never make a pair disagree, and a wrong file passes only if it matches
#: more than half of an edge by chance.
DISAGREEING_SHARE = 0.5
#: What a chip that its neighbours disagree with looks like.
LOOKS_WRONG = "another product's, month's or model run's file, or shifted"


#: Comparable overlaps a tile-month needs before most of them disagreeing says more about
#: the archive than about its chips (:func:`overlaps_disagree`).
SYSTEMATIC_PAIRS = 4


def overlaps_disagree(edges: Sequence[EdgeStats], tolerance_mm: float) -> str | None:
    """Why a tile-month's overlaps say that the archive's chips do not repeat each other's
    pixels, or None.

    One wrong chip disagrees with at most its four neighbours; when most of a month's
    overlaps disagree, the model computes a pixel shared by two chips differently in each
    (or every chip is wrong), and the tolerance, not 25 chips, is what to look at.
    """
    comparable = [edge for edge in edges if edge.compared >= EDGE_MIN_PIXELS]
    against = [edge for edge in comparable if edge.differ > DISAGREEING_SHARE * edge.compared]
    if len(comparable) < SYSTEMATIC_PAIRS or len(against) <= len(comparable) / 2:
        return None
    largest = max(edge.largest for edge in against)
    return (
        f"{len(against)} of its {len(comparable)} overlaps between neighbouring chips "
        f"disagree (values up to {largest:g} mm apart, against plausibility.edge_tolerance_mm "
        f"{tolerance_mm:g}): this archive's chips do not repeat each other's pixels where they "
        "overlap. Nothing was published. If the model computes a shared pixel differently in "
        "each chip, set plausibility.edge_tolerance_mm to the difference it allows; else "
        "rerun the model for this month"
    )


def neighbour_refusals(
    names: Sequence[str], chips: Sequence[Chip], edges: Sequence[EdgeStats]
) -> dict[str, str]:
    """The chips of a tile-month that their neighbours refuse, with why.

    Each pair of overlapping chips that compares at least :data:`EDGE_MIN_PIXELS` pixels
    votes: its chips agree, or disagree (on more than :data:`DISAGREEING_SHARE` of them).
    A chip that disagrees with a majority (more than half) of its comparable neighbours is
    refused; the neighbour of a wrong chip is not, as long as its other neighbours agree
    with it. Chips are refused in rounds, each counting only the neighbours not refused
    yet and refusing the chips with the most disagreeing neighbours, so that wrong
    neighbours cannot outvote a chip either (a corner chip beside two wrong chips stays).
    A disagreeing pair left with neither chip refused is refused whole. A refused chip
    whose disagreeing neighbours were all refused with it (two chips that are each other's
    only comparable neighbour, say) cannot be told from them: its reason names them and
    says so.

    Parameters
    ----------
    names : sequence of str
        What errors call each chip: the mosaic's sources, in order.
    chips : sequence of Chip
        Each one's chip, which names it as a neighbour.
    edges : sequence of EdgeStats
        The overlapping pairs' counts (:attr:`etm.mosaic.Mosaic.edges`).

    Returns
    -------
    dict
        Each refused chip's name to why, in the sources' order; empty when none is.
    """
    comparable = [edge for edge in edges if edge.compared >= EDGE_MIN_PIXELS]
    against = [edge for edge in comparable if edge.differ > DISAGREEING_SHARE * edge.compared]
    rounds: dict[int, int] = {}  # each refused chip: the round that refused it
    round_number = 0
    while outvoted := _most_outvoted(comparable, against, set(rounds)):
        rounds.update(dict.fromkeys(outvoted, round_number))
        round_number += 1
    for edge in against:
        if edge.first not in rounds and edge.second not in rounds:
            rounds.update(dict.fromkeys((edge.first, edge.second), round_number))
    reasons = {}
    for index, name in enumerate(names):
        if index not in rounds:
            continue
        mine = {_other(edge, index): edge for edge in against if index in (edge.first, edge.second)}
        # Its disagreements that counted: with chips not refused before it.
        counted = [other for other in mine if rounds.get(other, math.inf) >= rounds[index]]
        if all(rounds.get(other) == rounds[index] for other in counted):
            listed = _disagreements([mine[other] for other in counted], chips, index)
            reasons[name] = (
                f"disagrees with {listed} where they overlap, and their other neighbours "
                f"cannot tell which is wrong: one looks like {LOOKS_WRONG}; rerun the model "
                "for the wrong one, or for both"
            )
        else:
            neighbours = sum(index in (edge.first, edge.second) for edge in comparable)
            reasons[name] = (
                f"disagrees with {len(mine)} of its {neighbours} neighbour"
                f"{'s' if neighbours > 1 else ''} where they overlap: "
                f"{_disagreements(list(mine.values()), chips, index)}; it looks like "
                f"{LOOKS_WRONG}: rerun the model for it"
            )
    return reasons


def _other(edge: EdgeStats, index: int) -> int:
    return edge.second if edge.first == index else edge.first


def _most_outvoted(
    comparable: list[EdgeStats], against: list[EdgeStats], refused: set[int]
) -> set[int]:
    """The chips outside ``refused`` that disagree with a majority of their neighbours
    outside it, those with the most disagreeing neighbours only; empty if none does."""
    neighbours: Counter[int] = Counter()
    disagreeing: Counter[int] = Counter()
    for edges, counts in ((comparable, neighbours), (against, disagreeing)):
        for edge in edges:
            if not {edge.first, edge.second} & refused:
                counts.update((edge.first, edge.second))
    outvoted = {chip: n for chip, n in disagreeing.items() if 2 * n > neighbours[chip]}
    most = max(outvoted.values(), default=0)
    return {chip for chip, n in outvoted.items() if n == most}


def _disagreements(edges: list[EdgeStats], chips: Sequence[Chip], index: int) -> str:
    """A chip's disagreeing neighbours, each with how much: ``chip43.4N-104.8E (on 100% of
    the 97 pixels they share with a value), chip45.4N-102.8E (98% of 97)``."""
    first, *more = edges
    return ", ".join(
        [
            f"{chips[_other(first, index)].name} (on {first.differ / first.compared:.0%} of "
            f"the {first.compared} pixels they share with a value)",
            *(
                f"{chips[_other(edge, index)].name} ({edge.differ / edge.compared:.0%} of "
                f"{edge.compared})"
                for edge in more
            ),
        ]
    )


#: A chip's usual NaN share is read from every 4th row: it is compared with a jump of
#: ``nan_share_jump`` (0.25 by default), and GDAL then reads a quarter of a chip's strips
#: (a tile baseline of 75 real-size files: 0.2 instead of 0.5-0.9 CPU-s).
BASELINE_ROW_STEP = 4


#: How GDAL reads a chip: with its GeoTIFF driver alone (a VRT would read other files),
#: without looking for files beside it (.ovr, .msk, .aux.xml: a pipe there waited forever),
#: and never writing one there (chips are read-only).
CHIP_DRIVER = "GTiff"
CHIP_READING = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_PAM_ENABLED": "NO"}


def nan_share(path: str) -> float:
    """Share of a chip file's pixels that are NaN (or its nodata value), in every
    :data:`BASELINE_ROW_STEP`-th row."""
    import rasterio

    with rasterio.Env(**CHIP_READING), rasterio.open(path, driver=CHIP_DRIVER) as source:
        shape = (-(-source.height // BASELINE_ROW_STEP), source.width)
        values = source.read(1, out_shape=shape)
        mask = source.read_masks(1, out_shape=shape) if has_mask_band(source) else None
        nodata = source.nodata
    missing = np.isnan(values)
    if nodata is not None and not math.isnan(nodata):
        missing |= values == nodata
    if mask is not None:
        missing |= mask == 0
    return float(missing.mean())


def has_mask_band(dataset) -> bool:
    """Whether a rasterio dataset says which pixels have no value with a mask band (GDAL's
    per-dataset mask, e.g. an internal TIFF mask) rather than NaN or a nodata tag."""
    from rasterio.enums import MaskFlags

    return MaskFlags.per_dataset in dataset.mask_flag_enums[0]


#: A raster's CRS and pixel size (:func:`grid_key`).
GridKey = tuple[str, float, float]


def grid_key(crs, transform) -> GridKey:
    """CRS and pixel size, rounded so that rasters of one master grid share the key."""
    return crs.to_string() if crs else "", round(transform.a, 12), round(transform.e, 12)


def chip_header(path: str, name: str, expected: ChipExpectation) -> GridKey | str:
    """A chip file's grid (:func:`grid_key`), read from its header alone, or why it cannot
    be the chip it names (:func:`check_header`).

    Parameters
    ----------
    path : str
        A local file.
    name : str
        What errors call it.
    expected : ChipExpectation

    Returns
    -------
    tuple or str
        Its grid, or the problem.
    """
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with rasterio.Env(**CHIP_READING), rasterio.open(path, driver=CHIP_DRIVER) as source:
            check_header(
                name, source.dtypes[0], source.transform, source.crs, source.width,
                source.height, expected, block=source.block_shapes[0], scale=source.scales[0],
                offset=source.offsets[0], unit=source.units[0] or "",
            )  # fmt: skip
            return grid_key(source.crs, source.transform)
    except ChipError as error:
        return error.problem
    except RasterioError as error:
        return f"cannot be opened ({one_line(error)})"


def usual_nan_shares(
    files: dict[str, list[str]], chip_size: int, fetch: Callable[[str], str] = str
) -> tuple[dict[str, float], dict[str, str]]:
    """Each chip's usual NaN share: the least over a few of its files.

    The model's NaN mask does not change from month to month, and a file written without
    (all of) its data only has more NaN: so the least share is the chip's own, however many
    of the files it is read from went wrong (a median is outvoted by two bad files of
    three, as a model run that died mid-archive leaves them).

    Every file's header is read before any pixel: a file that cannot be fetched, is not the
    chip it names (a footprint beyond a pixel of its square), or has another grid than most
    of the files (a pixel size that would make it far larger), is left out, as its month's
    mosaic refuses it.

    Parameters
    ----------
    files : dict
        Chip name to paths of some of its files (e.g. three months spread over the period).
    chip_size : int
        Chip edge in tenths of a degree.
    fetch : callable
        A path's local file (e.g. downloaded from S3); an
        :class:`etm.errors.ObjectRefusedError` it raises (gone, or refused) leaves the file
        out.

    Returns
    -------
    tuple of dict
        Chip name to its least NaN share (a chip with no file left is not in it), and each
        path left out to why.
    """
    from rasterio.errors import RasterioError

    skipped: dict[str, str] = {}
    grids: dict[str, tuple[str, GridKey]] = {}  # path: (local file, grid)
    for chip, paths in files.items():
        for path in paths:
            try:
                local = fetch(path)
            except ObjectRefusedError as error:
                skipped[path] = str(error)
                continue
            found = chip_header(local, path, ChipExpectation(Chip.parse(chip), chip_size))
            if isinstance(found, str):
                skipped[path] = found
            else:
                grids[path] = local, found
    usual_grid = Counter(grid for _local, grid in grids.values()).most_common(1)
    usual = {}
    for chip, paths in files.items():
        shares = []
        for path in paths:
            if path not in grids:
                continue
            local, grid = grids[path]
            if grid != usual_grid[0][0]:
                skipped[path] = (
                    f"has CRS {grid[0] or 'none'} and pixel size {grid[1]!r} x {-grid[2]!r}, "
                    "unlike most of its tile's files"
                )
                continue
            try:
                shares.append(nan_share(local))
            except RasterioError as error:
                skipped[path] = f"cannot be read in full ({one_line(error)})"
        if shares:
            usual[chip] = min(shares)
    return usual, skipped


def reference_files(
    listing, prefixes: list[str], product: str, chips: list[str] | None
) -> dict[str, list[str]]:
    """Up to three files of each chip a tile's usual NaN shares are read from.

    For each chip, the first, middle and last of the monthly files of ``product`` in its
    first, middle and last year folders found: the model's NaN mask does not change with
    the month: the least share of three spread-out files is the chip's own, even if two
    were written without data (:func:`usual_nan_shares`).

    Parameters
    ----------
    listing : etm.listing.Listing
    prefixes : list of str
        The tile's prefixes, as ``listing`` spells them.
    product : str
    chips : list of str or None
        The tile's chip names; None: the chip folders found.

    Returns
    -------
    dict
        Chip name to file paths (as ``listing`` spells them).
    """
    from etm.inventory import CHIP_FILE, parse_chip_folder
    from etm.listing import join

    if chips is None:
        found = {name for prefix in prefixes for name in listing.folders(prefix)}
        chips = sorted(name for name in found if not isinstance(parse_chip_folder(name), str))

    def spread(found: list[str]) -> list[str]:
        return list(dict.fromkeys(found[index] for index in (0, len(found) // 2, -1) if found))

    files: dict[str, list[str]] = {}
    for chip in chips:
        found = {y for p in prefixes for y in listing.folders(join(p, chip))}
        years = sorted(y for y in found if y.isascii() and y.isdigit())
        monthly = sorted(
            (match["year"], match["month"], obj.path)
            for year in spread(years)
            for prefix in prefixes
            for obj in listing.walk(join(prefix, chip, year))
            if (match := CHIP_FILE.match(obj.path[len(prefix) + 1 :]))
            and match["product"] == product
        )
        if monthly:
            files[chip] = spread([path for _year, _month, path in monthly])
    return files


def write_baseline(
    prefixes: list[str], product: str, chips: list[str] | None, chip_size: int, baseline: str
) -> None:
    """Write a tile's chips' usual NaN shares (JSON: chip name to share).

    The files are chosen from listings of the tile's prefixes (:func:`reference_files`),
    local folders or ``s3://`` prefixes; each is read once, its header first
    (:func:`usual_nan_shares`). The files left out are logged, with why.
    """
    import json
    import tempfile

    from etm import s3
    from etm.listing import LocalListing

    on_s3 = prefixes[0].startswith("s3://")
    # A job's listings are its own: the run's storage plugin answers from the run's.
    listing = s3.S3Listing(record=False) if on_s3 else LocalListing()
    listed = [prefix.removeprefix("s3://") for prefix in prefixes]
    files = reference_files(listing, listed, product, chips)
    with tempfile.TemporaryDirectory() as scratch:
        fetch = (lambda path: s3.download(path, scratch)) if on_s3 else (lambda path: path)
        usual, skipped = usual_nan_shares(files, chip_size, fetch)
    for path, reason in skipped.items():
        name = f"s3://{path}" if on_s3 else path
        log.warning("chip %s: left out of the baseline: %s", name, reason)
    for chip, paths in sorted(files.items()):
        share = f"{usual[chip]:.4f}" if chip in usual else "unknown (no readable file)"
        log.info("%s: usual NaN share %s, from %s", chip, share, ", ".join(paths))
    with open(baseline, "w") as stream:
        json.dump(usual, stream, indent=1, sort_keys=True)
