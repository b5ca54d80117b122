"""What a run publishes, and from what: periods, paths, the missing-chip policy, reruns.

Everything here is plain data and pure functions of :class:`~etm.config.Settings` and the
verifier's findings; ``rules/common.smk`` only connects them to Snakemake.

Published files, relative to ``enduser_cog_output``: the COG (``.tif``) and STAC Item
(``.json``) of a period, and the region's quicklook (``.png``)::

    tiles/{tile}/{product}/{year}/{product}_{period}
    mosaic/{product}/{year}/{product}_{period}
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from etm.checks import ChipChecks, ChipPolicy
from etm.config import Settings
from etm.grid import chip_name
from etm.inventory import ChipMonth, Verification
from etm.rerun import ChipRerun

TILE = "tiles/{tile}/{product}/{year}/{product}_{period}"
REGION = "mosaic/{product}/{year}/{product}_{period}"
#: What a run keeps for its output prefix, apart from every other prefix's: under
#: ``logs/<key>`` (:attr:`etm.config.Settings.key`; on S3, in the work area) its job logs,
#: each tile-month's findings and provenance record, and each tile's chip baseline.
LOGS = "logs/{key}"
#: Job logs of the mosaic rules, under :data:`LOGS`: ``etm.notify`` reads what a failed job
#: built from them.
TILE_LOG = "mosaic_tile/{tile}/{year}/{product}_{period}.log"
REGION_LOG = "mosaic_region/{year}/{product}_{period}.log"
#: Where each tile-month's mosaic records the chips it refused or found suspect.
FINDINGS_LOG = "findings/{tile}/{year}/{product}_{period}.json"
#: Where each tile-month's mosaic records what it was built from (:mod:`etm.provenance`),
#: by the COG's name: the record's path names its month.
PROVENANCE_LOG = f"provenance/{TILE}.json"
#: Each tile's chips' usual NaN shares (rule chip_baseline).
BASELINE = "baselines/{tile}.json"
#: Where the work area keeps published Items' texts for the STAC catalog on S3, per output
#: prefix: those the last catalog read (``.ndjson``), and under the folder of the same name
#: each region period's, tiles' Items included, kept by its job
#: (:meth:`Publication.kept_items`).
KEPT_ITEMS = "{work}/stac_items/{output}"

#: Where a run on S3 keeps a copy of each region quicklook it draws, by its name under the
#: output prefix: Snakemake deletes the published ones before the job that may keep them
#: (:func:`etm.quicklook.render_all`).
KEPT_QUICKLOOKS = "{work}/quicklooks/{output}"


def kept(settings: Settings, template: str) -> str:
    """A path a run keeps for its output prefix (a template under :data:`LOGS`)."""
    return f"{LOGS.format(key=settings.key)}/{template}"


@dataclass(frozen=True, order=True)
class Period:
    """A month (``YYYYMM``) or a year (``YYYY``) of a product."""

    year: int
    month: int | None = None

    @classmethod
    def parse(cls, text: str) -> Period:
        """``"202007"`` is July 2020, ``"2020"`` the year 2020.

        Raises
        ------
        ValueError
            If the text is neither.
        """
        if not (text.isascii() and text.isdigit()) or len(text) not in (4, 6):
            raise ValueError(f"{text!r} is not a period (YYYYMM or YYYY)")
        return cls(int(text[:4]), int(text[4:]) if len(text) == 6 else None)

    @property
    def is_month(self) -> bool:
        return self.month is not None

    def months(self) -> list[Period]:
        """The months the period is made of: itself, or the year's 12."""
        if self.is_month:
            return [self]
        return [Period(self.year, month) for month in range(1, 13)]

    @property
    def label(self) -> str:
        """For people: ``2020-07``, or ``2020``."""
        return f"{self.year}-{self.month:02d}" if self.is_month else f"{self.year}"

    def __str__(self) -> str:
        return f"{self.year}{self.month:02d}" if self.is_month else f"{self.year}"


#: The kinds of published period, each a STAC Collection per product, in the order the
#: catalog lists them: the region's months first, what most users want.
KINDS = ("monthly", "yearly", "tiles-monthly", "tiles-yearly")


def collection_id(product: str, tile: str | None, period: Period) -> str:
    """The STAC Collection of a product's periods of one kind: ``etasw-monthly`` (the
    region's months), ``etasw-yearly``, ``etasw-tiles-monthly``, ``etasw-tiles-yearly``."""
    kind = "monthly" if period.is_month else "yearly"
    return f"{product}-tiles-{kind}" if tile else f"{product}-{kind}"


def collection_kind(collection: str) -> str:
    """The kind (one of :data:`KINDS`) of a Collection id."""
    return next(kind for kind in reversed(KINDS) if collection.endswith(f"-{kind}"))


def collection_href(collection: str) -> str:
    """A STAC Collection's file, relative to the output prefix."""
    return f"{collection}/collection.json"


#: A Collection's indexes of its Items, beside its ``collection.json``: JSON lines, and
#: GeoParquet (stac-geoparquet).
INDEXES = ("items.ndjson", "items.parquet")
#: A region Collection's periods, with their COGs and value ranges: what the map page reads
#: to open (about 100 bytes a period, where the Items take 2 KB).
PERIODS = "periods.json"


def index_hrefs(collection: str) -> list[str]:
    """A Collection's indexes (:data:`INDEXES`), then a region Collection's
    :data:`PERIODS`, relative to the output prefix."""
    region = not collection_kind(collection).startswith("tiles")
    return [f"{collection}/{name}" for name in (*INDEXES, *[PERIODS] * region)]


def index_base(output: str, *, on_s3: bool, public_url: str | None) -> str:
    """Where a Collection's index says the output prefix is: ``public_url`` if set, else
    ``s3://bucket/prefix`` on S3, or a local folder's absolute path.

    A path, not a ``file://`` URL: rasterio (and so odc-stac and stackstac) opens a file
    URL without decoding it, so that a folder whose name a URL escapes (a space, an
    accent) would name no file.
    """
    if public_url:
        return public_url
    return f"s3://{output}" if on_s3 else os.path.abspath(output)


def published(settings: Settings, name: str, suffix: str) -> str:
    """A published file's config path: the output prefix, its name and suffix."""
    return f"{settings.output}/{name}.{suffix}"


def periods(settings: Settings, year: int) -> list[Period]:
    """A year's configured months, then the year itself with ``annual: true``."""
    found = [Period(year, month) for month in settings.months]
    return found + [Period(year)] * settings.annual


def aggregation(settings: Settings, product: str, period: Period) -> str | None:
    """How a period's pixels aggregate months: None for a month, else sum or mean."""
    return None if period.is_month else settings.annual_aggregation[product]


@dataclass(frozen=True)
class Policy:
    """The tile-months the missing-chip policy leaves out, and the reruns it asks for."""

    skipped: frozenset[tuple[str, str, int, int]] = frozenset()
    #: Missing chips to rerun the model for, by (tile, year): chip names.
    reruns: dict[tuple[str, int], tuple[str, ...]] | None = None

    def rerun_chips(self, tile: str, year: int) -> tuple[str, ...]:
        return (self.reruns or {}).get((tile, year), ())


#: What each missing-chip policy does, as the verifier's closing line says it.
POLICY_ACTIONS = {
    "error": "no job was started; rerun the model for them, or set missing_chips: skip to "
    "build the complete months only",
    "skip": "their months were left out (missing_chips: skip)",
    "rerun": "the model is rerun for their chips and years before their months "
    "(missing_chips: rerun)",
}


def policy(settings: Settings, verification: Verification) -> Policy:
    """What the missing-chip policy makes of the verification."""
    if settings.missing_chips == "skip":
        return Policy(skipped=frozenset(verification.incomplete))
    if settings.missing_chips == "rerun":
        reruns: dict[tuple[str, int], dict[str, None]] = {}
        for chip_month in verification.missing:
            at = (chip_month.tile, chip_month.year)
            reruns.setdefault(at, {})[chip_month.chip.name] = None
        return Policy(reruns={at: tuple(chips) for at, chips in reruns.items()})
    return Policy()


def missing_line(settings: Settings, count: int, full_list: str) -> str:
    """The verifier's closing line about missing chip files."""
    action = POLICY_ACTIONS[settings.missing_chips]
    return f"{count} chip files missing; {action}. Full list: {full_list}"


@dataclass(frozen=True)
class Publication:
    """One published period of a product, for a tile or (``tile`` None) the region."""

    product: str
    period: Period
    tile: str | None = None

    @property
    def collection(self) -> str:
        return collection_id(self.product, self.tile, self.period)

    @property
    def name(self) -> str:
        """Its path relative to the output prefix, without suffix."""
        at = dict(product=self.product, year=self.period.year, period=self.period)
        return TILE.format(tile=self.tile, **at) if self.tile else REGION.format(**at)

    def kept_items(self, kept: str) -> str:
        """Where its region period's job keeps the period's Items (tiles' and region's),
        under ``kept`` (:data:`KEPT_ITEMS`)."""
        return f"{kept}/{replace(self, tile=None).name}.ndjson"


def collections(settings: Settings, published: list[Publication]) -> list[str]:
    """The STAC Collections of what is published, in the catalog's order: by product,
    then kind (:data:`KINDS`)."""
    found = {p.collection for p in published}
    ordered = [f"{product}-{kind}" for product in settings.products for kind in KINDS]
    return [collection for collection in ordered if collection in found]


def publications(settings: Settings, skipped=frozenset()) -> list[Publication]:
    """Every tile and region period the run publishes.

    A tile's month is published when its chips are complete (or, with missing_chips:
    rerun, once the model was rerun for them), its year when all 12 months are; the
    region's period when every tile's is.
    """
    found = []
    for product in settings.products:
        for year in settings.years:
            for period in periods(settings, year):
                tiles = [
                    tile
                    for tile in settings.tiles
                    if not any((tile, product, year, m.month) in skipped for m in period.months())
                ]
                found += [Publication(product, period, tile) for tile in tiles]
                if len(tiles) == len(settings.tiles):
                    found.append(Publication(product, period))
    return found


@dataclass(frozen=True)
class Containers:
    """The containers of a run on a cluster or cloud (profiles/aws): one per group of jobs
    Snakemake formed (profiles/aws: per tile, product and year; per product and year for the
    region) or job submitted alone, each with its vCPUs and memory."""

    shapes: tuple[tuple[int, int], ...]
    #: ``--cores``: the cores in flight over all containers.
    cores: int
    #: ``max_concurrent_containers`` (and ``--jobs``): the containers at once.
    at_once: int

    def describe(self) -> str:
        """One line: how many containers, of what shapes, and the cores they keep busy."""
        counts = Counter(self.shapes)
        shapes = ", ".join(
            f"{count:,} of {vcpus} vCPU{'s' * (vcpus > 1)} and {memory:,} MiB"
            for (vcpus, memory), count in sorted(counts.items(), key=lambda item: -item[1])
        )
        widest = max((vcpus for vcpus, _memory in self.shapes), default=1)
        busy = min(self.cores, self.at_once * widest)
        return (
            f"{len(self.shapes):,} containers to submit ({shapes}), each running as many of "
            f"its jobs at once as it has vCPUs; at most {self.at_once} at once (--jobs, "
            f"max_concurrent_containers), {self.cores} cores in flight (--cores): up to {busy} "
            "cores busy"
        )


#: The groups of jobs a cluster or cloud runs, one container each: a tile's periods of
#: ``years`` (``2001-2002``, or ``2001``), every product's; the region's of a product and
#: year.
TILE_CONTAINER, REGION_CONTAINER = "tile_{tile}_{years}", "region_{product}_{year}"
#: Snakemake's group components of each: how many of its groups (one per period, as no
#: job of one period needs another's) one container holds. All of them.
CONTAINER_COMPONENTS = {TILE_CONTAINER: 100_000, REGION_CONTAINER: 100_000}


def container(settings: Settings, tile: str | None, product: str, year: int) -> str:
    """The group of jobs (one container on a cluster or cloud) a period's job is in: its
    tile's (:func:`tile_container`), or (``tile`` None) the region's of its product and
    year."""
    if tile is None:
        return REGION_CONTAINER.format(product=product, year=year)
    return tile_container(settings, tile, year)


def tile_container(settings: Settings, tile: str, year: int) -> str:
    """A tile's group of jobs of ``year``: every product's, of ``years_per_container``
    years counted from the first year."""
    first, last = settings.years[0], settings.years[-1]
    start = year - (year - first) % settings.years_per_container
    end = min(start + settings.years_per_container - 1, last)
    return TILE_CONTAINER.format(tile=tile, years=f"{start}-{end}" if end > start else start)


def containers(settings: Settings) -> dict[str, str]:
    """Every group of jobs of a run (:func:`container`), with the pattern it is one of."""
    years = settings.years
    tiles = {tile_container(settings, t, y): TILE_CONTAINER for t in settings.tiles for y in years}
    regions = {
        container(settings, None, p, y): REGION_CONTAINER for p in settings.products for y in years
    }
    return {**tiles, **regions}


#: What a job run in a container holds: a container (max_concurrent_containers) and one of
#: that container's job slots (resource_scopes in rules/common.smk).
CONTAINER = {"containers": 1, "container_slots": 1}


def job_memory_mb(settings: Settings) -> int:
    """Memory of one mosaic job: GDAL's cache, and the Snakemake process that runs the job in
    its thread, with the job's buffers (a tile peaks at about 245 MB, a 375-chip region at
    about 360 MB: benchmarks/mosaic_speed.py)."""
    return settings.gdal_cache_mb + 992


def mosaic_resources(settings: Settings) -> dict:
    """Snakemake resources of a mosaic job: a container slot, its threads as ``cpus`` (which
    ``--cores`` caps on clusters and clouds), its memory. Values, not functions: Snakemake
    inspects a function's signature at each of its calls, for every job of the DAG."""
    return {**CONTAINER, "cpus": settings.mosaic_threads, "mem_mb": job_memory_mb(settings)}


def chip_names(settings: Settings, tile: str) -> list[str] | None:
    """A tile's configured chip names; None where its chips are the ones found."""
    chips = settings.tiles[tile].chips
    return None if chips is None else [chip.name for chip in chips]


def tile_sources(
    settings: Settings,
    tile: str,
    product: str,
    period: Period,
    month_chips: Callable[[int], list[str]],
) -> tuple[list[str], str]:
    """Config paths of a tile period's sources and of its COG: a month's chip files (from
    ``month_chips(month)``), or a year's 12 monthly COGs."""
    at = dict(tile=tile, product=product, year=period.year)
    if period.is_month:
        sources = month_chips(period.month)
    else:
        sources = [published(settings, TILE.format(**at, period=m), "tif") for m in period.months()]
    return sources, published(settings, TILE.format(**at, period=period), "tif")


def region_sources(settings: Settings, product: str, period: Period) -> tuple[list[str], str]:
    """Config paths of a region period's tile COGs and of its COG."""
    at = dict(product=product, year=period.year, period=period)
    tiles = [published(settings, TILE.format(tile=tile, **at), "tif") for tile in settings.tiles]
    return tiles, published(settings, REGION.format(**at), "tif")


def item_options(settings: Settings, publication: Publication) -> dict:
    """:func:`etm.stac.item_for`'s parameters of a publication's Item, but for its COG; a
    region period's names its quicklook (drawn by :func:`etm.quicklook.render_all`)."""
    product, period = publication.product, publication.period
    return dict(
        href=f"{publication.name}.json",
        collection=publication.collection,
        product=product,
        tile=publication.tile,
        period=str(period),
        aggregation=aggregation(settings, product, period),
        thumbnail=None if publication.tile else f"{os.path.basename(publication.name)}.png",
    )


def still_missing(
    verification: Verification, found: dict, tile: str, product: str, year: int, month: int
) -> list[str]:
    """Expected paths of a tile-month's chips absent from a new listing (after reruns)."""
    return [
        verification.expected_path(ChipMonth(tile, chip, product, year, month))
        for chip, chip_file in found.items()
        if not chip_file
    ]


def chip_checks(settings: Settings, product: str, chip_paths: Sequence[str]) -> ChipChecks:
    """How a tile-month's chips are checked (see :mod:`etm.checks`)."""
    return ChipChecks(
        tuple(chip_name(path) for path in chip_paths),
        settings.chip_size,
        ChipPolicy(
            settings.plausibility.ranges[product],
            settings.plausibility.nan_share_jump,
            settings.suspect_chips,
            settings.plausibility.edge_tolerance_mm,
        ),
    )


@dataclass(frozen=True)
class Source:
    """A period's source as the user knows it (an S3 URL or a local path), and its identity
    and modification time when the run listed it (:attr:`etm.listing.StoredObject.identity`;
    empty for etm's own COGs)."""

    name: str
    identity: str = ""
    mtime: float = 0.0


@dataclass(frozen=True)
class PeriodPlan:
    """Everything a tile or region period's job needs but the local paths Snakemake gives it:
    what it publishes and where, its sources with their identities, how they are checked,
    combined and encoded, and what the work area keeps of it."""

    publication: Publication
    sources: tuple[Source, ...]
    #: The COG, as the user knows it.
    destination: str
    #: :func:`etm.stac.item_for`'s parameters (:func:`item_options`).
    item: dict
    #: How sources are combined per pixel (:func:`etm.mosaic.write_levels`).
    combine: str
    #: The config's ``cog`` section.
    encoding: dict
    gdal_cache_mb: int
    #: The run prefixes the chips came from, named in the COG's metadata.
    prefixes: tuple[str, ...]
    #: A tile-month's chip checks; None for etm's own COGs.
    checks: ChipChecks | None = None
    #: Chips still missing after the model was rerun for them.
    missing: tuple[str, ...] = ()
    #: With missing_chips: rerun, how the job reruns the model for a chip gone from S3 since
    #: the run listed it (:func:`etm.rerun.restore`).
    rerun: ChipRerun | None = None
    #: On S3, where a region period's job keeps its Items and its tiles' for the catalog.
    kept_items: str | None = None
    #: With ``kept_items``, :func:`item_options` of each source's Item.
    tile_items: tuple[dict, ...] = ()

    @property
    def label(self) -> str:
        """For people: ``tile r50.0_tile6 etasw 2020-07``, ``region etasw 2020``."""
        p = self.publication
        place = f"tile {p.tile}" if p.tile else "region"
        return f"{place} {p.product} {p.period.label}"


def period_plan(
    settings: Settings,
    publication: Publication,
    *,
    sources: Sequence[Source],
    destination: str,
    missing: Sequence[str],
    prefixes: Sequence[str],
    kept: str | None = None,
    rerun: ChipRerun | None = None,
) -> PeriodPlan:
    """The plan of one tile or region period. With ``kept`` (:data:`KEPT_ITEMS`, on S3), a
    region period's job keeps its tiles' Items and its own for the catalog; with ``rerun``, a
    tile-month's job reruns the model for a chip gone from S3 since the run listed it."""
    tile, product, period = publication.tile, publication.product, publication.period
    item = item_options(settings, publication)
    keeps = kept is not None and tile is None
    # In the order of the region period's sources (:func:`region_sources`).
    tiles = [replace(publication, tile=name) for name in settings.tiles] if keeps else []
    names = [source.name for source in sources]
    return PeriodPlan(
        publication,
        tuple(sources),
        destination,
        item,
        combine=(item["aggregation"] if tile else None) or "first",
        encoding=settings.cog,
        gdal_cache_mb=settings.gdal_cache_mb,
        prefixes=tuple(prefixes),
        checks=chip_checks(settings, product, names) if tile and period.is_month else None,
        missing=tuple(missing),
        rerun=rerun,
        kept_items=publication.kept_items(kept) if keeps else None,
        tile_items=tuple(item_options(settings, p) for p in tiles),
    )
