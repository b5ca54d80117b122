"""One published period of one tile or of the region: its COG and STAC Item."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import version

import rasterio

from etm import provenance, rerun, s3, stac
from etm.checks import ChipExpectation, Findings, judge, neighbour_refusals, overlaps_disagree
from etm.cog import Metadata, build_cog
from etm.errors import (
    ChipChangedError,
    ChipError,
    ChipNeighbourError,
    ChipReadError,
    ChipTimeError,
    EmptyMosaicError,
    EtmError,
    MissingChipsError,
    OverlapsError,
)
from etm.files import read_regular, write_whole
from etm.grid import Chip
from etm.listing import local_identity
from etm.mosaic import Mosaic
from etm.plan import PeriodPlan, Source
from etm.products import PRODUCTS

log = logging.getLogger(__name__)


#: The most a tile's baseline takes (its 25 chips take 1 KB).
MAX_BASELINE_BYTES = 2**20


def _usual_nan_shares(baseline: str | None) -> dict[str, float]:
    """A tile's baseline (rule chip_baseline): each chip's usual NaN share.

    Raises
    ------
    EtmError
        If the file is not one etm wrote.
    """
    if not baseline:
        return {}
    try:  # what is larger, or a pipe, is not etm's
        shares = json.loads(read_regular(baseline, MAX_BASELINE_BYTES + 1))
    except (OSError, ValueError, RecursionError):
        shares = None
    if not isinstance(shares, dict) or not all(
        type(share) in (int, float) for share in shares.values()
    ):
        raise EtmError(
            f"the baseline {baseline} is not one etm wrote: remove it, and the next run "
            "computes it again"
        )
    return shares


def _write_findings(path: str, findings: Findings) -> None:
    with open(path, "w") as stream:
        json.dump(findings.as_records(), stream)


def _checked_build(
    plan: PeriodPlan,
    sources: Sequence[str],
    cog: str,
    identities: Sequence[str],
    baseline: str | None,
    record: str | None,
    cog_options: dict,
) -> None:
    """Build a tile-month's COG from checked chips; record what was refused or suspect.

    A suspect chip that blocks its month (``suspect_chips: error``) fails it before the
    neighbours are compared; a chip its neighbours refuse is refused even when it is suspect
    and suspect chips are published."""
    checks, names = plan.checks, [source.name for source in plan.sources]
    chips = [Chip.parse(name) for name in checks.chips]
    usual = _usual_nan_shares(baseline)
    findings = Findings()
    read = zip(names, sources, identities, strict=True)
    local = [(name, path, identity) for name, path, identity in read if identity[:5] == "stat:"]

    def accept(mosaic: Mosaic) -> None:
        if local:  # every pixel is read: a chip rewritten meanwhile fails its month
            provenance.check_unchanged(*zip(*local, strict=True))
        if not any(stats.valid for stats in mosaic.stats):
            findings.refused.update(dict.fromkeys(names, "all NaN, as every chip of its month"))
            raise EmptyMosaicError(
                f"{plan.label}: every chip is all NaN; nothing was published. The model wrote "
                "files without data: rerun it for this month"
            )
        warnings = judge(names, chips, mosaic.stats, usual, checks.policy, findings)
        tolerance = checks.policy.edge_tolerance_mm
        if systematic := overlaps_disagree(mosaic.edges, tolerance):
            findings.refused.update(dict.fromkeys(names, "its month's overlaps mostly disagree"))
            raise OverlapsError(f"{plan.label}: {systematic}")
        refused = neighbour_refusals(names, chips, mosaic.edges)
        if refused:
            for name in refused:
                findings.suspect.pop(name, None)
            findings.refused.update(refused)
            raise ChipNeighbourError(refused)
        for line in warnings:
            log.warning("%s", line)

    try:
        build_cog(
            sources, cog, names=names,
            chips=[ChipExpectation(chip, checks.chip_size) for chip in chips],
            edge_tolerance_mm=checks.policy.edge_tolerance_mm, accept=accept, **cog_options,
        )  # fmt: skip
    except ChipChangedError:
        raise
    except ChipError as error:
        if local:  # a chip rewritten while it is read looks broken: name the rewrite
            provenance.check_unchanged(*zip(*local, strict=True))
        if error.path not in findings.suspect:
            findings.refused[error.path] = error.problem
        raise
    finally:
        if record:
            _write_findings(record, findings)


def chips_present(plan: PeriodPlan, sources: Sequence[str], scratch: str) -> PeriodPlan:
    """A tile-month's plan once every chip is there. A chip on S3 gone or rewritten since
    the run listed it (the storage plugin then leaves no local copy) fails the month; with
    missing_chips: rerun, the model is rerun for it (:func:`etm.rerun.restore`), and the
    month is built from the file it wrote.

    Raises
    ------
    ChipReadError
        Naming the first chip gone (for good).
    ChipChangedError
        Naming the first chip rewritten.
    RerunError
        If the model's rerun command fails.
    ObjectRefusedError
        If S3 refuses a chip (403).
    """
    present = list(plan.sources)
    for index, (source, path) in enumerate(zip(plan.sources, sources, strict=True)):
        if os.path.exists(path):
            continue
        on_s3 = source.name.startswith("s3://")
        # A chip S3 refuses (403) is this one line, never a rerun (ObjectRefusedError).
        now = s3.stat(source.name.removeprefix("s3://")) if on_s3 else None
        if not (plan.rerun and on_s3):
            raise _changed(source, now)
        found = rerun.restore(plan.rerun, source.name, source.mtime, path, scratch)
        present[index] = Source(f"s3://{found.path}", found.identity, found.mtime)
    return replace(plan, sources=tuple(present))


def _changed(source: Source, now: s3.StoredObject | None) -> ChipError:
    """Why a chip listed by the run is not there: deleted, or (on S3) rewritten (``now``:
    the object there now)."""
    if now is not None:
        return ChipChangedError(
            source.name,
            "was rewritten since this run listed it; its month was not built: run again to "
            "build it from the new file",
        )
    return ChipReadError(
        source.name,
        "was deleted since this run listed it; its month was not built: the next run finds "
        "it missing, and missing_chips says what then",
    )


def check_not_ahead(name: str, mtime: float, now: float) -> None:
    """Refuse a local chip whose modification time is ahead of this machine's clock.

    Snakemake fails a job whose output is older than an input (a clock skew), in lines
    of its own; a chip copied with its times from a machine whose clock runs ahead is.

    Raises
    ------
    ChipTimeError
        Naming the chip, its time and the clock's.
    """
    if mtime > now:
        ahead, clock = (
            datetime.fromtimestamp(t, UTC).isoformat(" ", "seconds") for t in (mtime, now)
        )
        raise ChipTimeError(
            name,
            f"its modification time, {ahead} UTC, is ahead of this machine's clock ({clock} "
            "UTC), and Snakemake takes no COG built from it as newer; nothing was "
            "published: fix the clock of the machine that wrote it, or touch the chip, then "
            "run again",
        )


def source_identities(plan: PeriodPlan, sources: Sequence[str]) -> list[str]:
    """What each source is as the job reads it: a local chip's identity now (it may have
    changed since the run listed it; :func:`etm.provenance.check_unchanged` checks that it
    does not change while it is read), an S3 chip's listed ETag (the storage plugin's
    download matched it), and an etm COG's own sources' digest."""
    identities = []
    for source, path in zip(plan.sources, sources, strict=True):
        if source.identity.startswith("stat:"):
            stat = os.stat(path)
            check_not_ahead(source.name, stat.st_mtime, time.time())
            identities.append(local_identity(stat))
        elif source.identity:
            identities.append(source.identity)
        else:
            with rasterio.open(path) as cog:
                identities.append(f"digest:{cog.tags().get(SOURCES_DIGEST, '')}")
    return identities


#: COG metadata items naming every source and identity it was built from, and their digest
#: (:func:`etm.provenance.digest`).
SOURCES, SOURCES_DIGEST = "ETM_SOURCES", "ETM_SOURCES_DIGEST"


def cog_metadata(plan: PeriodPlan, identities: Sequence[str], sources_digest: str) -> Metadata:
    """What a COG says of itself: product, place, period, aggregation, provenance."""
    p = plan.publication
    place = f"tile {p.tile}" if p.tile else "region"
    names = [source.name for source in plan.sources]
    return Metadata(
        description=f"{PRODUCTS[p.product].title} ({p.product}), {place}, {p.period.label}",
        unit="mm",
        items={
            "ETM_PRODUCT": p.product,
            "ETM_PLACE": p.tile or stac.REGION,
            "ETM_PERIOD": str(p.period),
            "ETM_AGGREGATION": plan.item["aggregation"] or "month",
            "ETM_RUN_PREFIXES": " ".join(plan.prefixes),
            SOURCES: json.dumps(list(zip(names, identities, strict=True))),
            SOURCES_DIGEST: sources_digest,
            "ETM_VERSION": version("etm"),
        },
    )


def publish(
    plan: PeriodPlan,
    *,
    sources: Sequence[str],
    cog: str,
    item: str,
    baseline: str | None = None,
    findings: str | None = None,
    record: str | None = None,
    threads: int = 1,
    tmpdir: str | None = None,
) -> None:
    """Build and publish a period's COG, then its STAC Item (a region period's names its
    quicklook, drawn once every period of its product and kind is published:
    :func:`etm.quicklook.render_all`).

    Parameters
    ----------
    plan : PeriodPlan
        What to publish, from what, and how (:func:`etm.plan.period_plan`).
    sources : sequence of str
        Local paths of the plan's sources: chips, monthly tile COGs (a tile's year) or tile
        COGs (the region).
    cog, item : str
        Local paths of the COG and its Item (Snakemake uploads them with S3 storage).
    baseline : str, optional
        JSON file of each chip's usual NaN share (rule chip_baseline).
    findings : str, optional
        JSON file where the refused and suspect chips are recorded (``[]`` if none),
        written even when the job fails.
    record : str, optional
        For a tile-month, where what it was built from is recorded once it is published
        (:func:`etm.provenance.record`).
    threads, tmpdir
        As in :func:`etm.cog.build_cog`.

    Raises
    ------
    MissingChipsError
        If a chip is still missing after the model's rerun; nothing is published.
    ChipError
        If a chip is refused (chips refused by their neighbours: one line each), is suspect
        and suspect chips block their month, was rewritten while it was read, or is gone
        since the run listed it (with missing_chips: rerun, even after the model's rerun);
        nothing is published.
    RerunError
        If the model's rerun for a chip gone since the run listed it fails.
    EmptyMosaicError
        If every chip of the month is all NaN; nothing is published.
    OverlapsError
        If most of the month's overlaps disagree; nothing is published.
    """
    if findings:
        _write_findings(findings, Findings())  # a job killed mid-way leaves a record
    if plan.missing:
        more = f" (and {len(plan.missing) - 1} more)" if len(plan.missing) > 1 else ""
        raise MissingChipsError(
            f"chip {plan.missing[0]}: still missing after the model was rerun for it{more}; "
            "see the rerun job's log under logs/, then run again to rerun it"
        )
    if plan.checks:
        plan = chips_present(plan, sources, tmpdir or tempfile.gettempdir())
    identities = source_identities(plan, sources)
    names = [source.name for source in plan.sources]
    sources_digest = provenance.digest(zip(names, identities, strict=True))
    cog_options = dict(
        gdal_cache_mb=plan.gdal_cache_mb, threads=threads, tmpdir=tmpdir,
        destination_name=plan.destination,
        metadata=cog_metadata(plan, identities, sources_digest), **plan.encoding,
    )  # fmt: skip
    if plan.checks:
        _checked_build(plan, sources, cog, identities, baseline, findings, cog_options)
    else:
        build_cog(sources, cog, combine=plan.combine, names=names, **cog_options)
    item_options = {**plan.item}
    item_href = item_options.pop("href")
    stac_item = stac.item_for(cog, href=item_href, **item_options)
    stac.write(stac_item, item)
    log.info("wrote STAC item %s", item_href)
    if plan.kept_items:
        texts = {item_href: stac.as_json(stac_item)}
        for source, tile in zip(sources, plan.tile_items, strict=True):
            texts[tile["href"]] = stac.as_json(stac.item_for(source, **tile))
        stac.keep_items(plan.kept_items, texts)
    if record and plan.checks:
        build_id = provenance.build(plan.encoding["dtype"])
        name = plan.publication.name
        write_whole(provenance.record(name, build_id, sources_digest).decode(), record)
        log.info("recorded its chips' digest %s", sources_digest)
