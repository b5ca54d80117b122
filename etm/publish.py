"""One published period of one tile or of the region: its COG, STAC Item and quicklook."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from importlib.metadata import version

from etm import stac
from etm.checks import ChipChecks, ChipExpectation, Findings, judge, neighbour_refusals
from etm.cog import Metadata, build_cog
from etm.errors import ChipError, ChipNeighbourError, EmptyMosaicError, MissingChipsError
from etm.grid import Chip
from etm.mosaic import Mosaic
from etm.plan import Period
from etm.products import PRODUCTS

log = logging.getLogger(__name__)


def _usual_nan_shares(baseline: str | None) -> dict[str, float]:
    if not baseline:
        return {}
    with open(baseline) as stream:
        return json.load(stream)


def _write_findings(path: str, findings: Findings) -> None:
    with open(path, "w") as stream:
        json.dump(findings.as_records(), stream)


def _checked_build(
    sources, cog, names, label: str, checks: ChipChecks, baseline, record: str, cog_options
) -> None:
    """Build a tile-month's COG from checked chips; record what was refused or suspect.

    A suspect chip that blocks its month (``suspect_chips: error``) fails it before the
    neighbours are compared; a chip its neighbours refuse is refused even when it is suspect
    and suspect chips are published."""
    chips = [Chip.parse(name) for name in checks.chips]
    usual = _usual_nan_shares(baseline)
    findings = Findings()

    def accept(mosaic: Mosaic) -> None:
        if not any(stats.valid for stats in mosaic.stats):
            findings.refused.update(dict.fromkeys(names, "all NaN, as every chip of its month"))
            raise EmptyMosaicError(
                f"{label}: every chip is all NaN; nothing was published. The model wrote "
                "files without data: rerun it for this month"
            )
        warnings = judge(list(names), chips, mosaic.stats, usual, checks.policy, findings)
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
    except ChipError as error:
        if error.path not in findings.suspect:
            findings.refused[error.path] = error.problem
        raise
    finally:
        if record:
            _write_findings(record, findings)


def cog_metadata(
    product: str, tile: str | None, period: str, aggregation: str | None, prefixes: Sequence[str]
) -> Metadata:
    """What a COG says of itself: product, place, period, aggregation, provenance."""
    place = f"tile {tile}" if tile else "region"
    label = Period.parse(period).label
    return Metadata(
        description=f"{PRODUCTS[product].title} ({product}), {place}, {label}",
        unit="mm",
        items={
            "ETM_PRODUCT": product,
            "ETM_PLACE": tile or stac.REGION,
            "ETM_PERIOD": period,
            "ETM_AGGREGATION": aggregation or "month",
            "ETM_RUN_PREFIXES": " ".join(prefixes),
            "ETM_VERSION": version("etm"),
        },
    )


def publish(
    sources: Sequence[str],
    *,
    cog: str,
    item: str,
    item_href: str,
    collection: str,
    product: str,
    tile: str | None,
    period: str,
    aggregation: str | None,
    combine: str,
    thumbnail: str | None = None,
    missing: Sequence[str] = (),
    checks: ChipChecks | None = None,
    baseline: str | None = None,
    findings: str | None = None,
    encoding: dict,
    gdal_cache_mb: int,
    threads: int = 1,
    tmpdir: str | None = None,
    names: Sequence[str] | None = None,
    destination_name: str | None = None,
    prefixes: Sequence[str] = (),
    kept_items: str | None = None,
    tile_items: Sequence[dict] = (),
) -> None:
    """Build and publish a COG, then its quicklook (if asked) and its STAC Item.

    Parameters
    ----------
    sources : sequence of str
        Chips, monthly tile COGs (a tile's year) or tile COGs (the region).
    cog, item : str
        Local paths of the COG and its Item (Snakemake uploads them with S3 storage).
    item_href : str
        The Item's path relative to the output prefix, for its relative links.
    collection : str
        The Item's Collection (:func:`etm.plan.collection_id`).
    product, tile, period, aggregation
        What is published (see :func:`etm.stac.item_for`).
    combine : {"first", "sum", "mean"}
        How sources are combined (see :func:`etm.mosaic.write_levels`).
    thumbnail : str, optional
        Local path of a quicklook PNG to draw beside the COG.
    missing : sequence of str
        Chips of the period still missing after the model was rerun for them.
    checks : ChipChecks, optional
        For a tile's month, how its chips are checked (:mod:`etm.checks`).
    baseline : str, optional
        JSON file of each chip's usual NaN share (rule chip_baseline).
    findings : str, optional
        JSON file where the refused and suspect chips are recorded (``[]`` if none),
        written even when the job fails.
    encoding : dict
        The config's ``cog`` section: dtype, compress, level, predictor, blocksize.
    gdal_cache_mb, threads, tmpdir, names, destination_name
        As in :func:`etm.cog.build_cog`.
    prefixes : sequence of str
        The run prefixes the chips came from, named in the COG's metadata.
    kept_items : str, optional
        For a region period on S3, where the work area keeps the period's Items for the
        catalog (:func:`etm.stac.keep_items`): its own, and its tiles', made again from
        ``sources``.
    tile_items : sequence of dict
        With ``kept_items``, the :func:`etm.stac.item_for` parameters of each source's Item.

    Raises
    ------
    MissingChipsError
        If a chip is still missing after the model's rerun; nothing is published.
    ChipError
        If a chip is refused (chips refused by their neighbours: one line each), or is
        suspect and suspect chips block their month; nothing is published.
    EmptyMosaicError
        If every chip of the month is all NaN; nothing is published.
    """
    if findings:
        _write_findings(findings, Findings())  # a job killed mid-way leaves a record
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise MissingChipsError(
            f"chip {missing[0]}: still missing after the model was rerun for it{more}; see "
            "the rerun job's log under logs/rerun_chip/, then run again to rerun it"
        )
    cog_options = dict(
        gdal_cache_mb=gdal_cache_mb, threads=threads, tmpdir=tmpdir,
        destination_name=destination_name,
        metadata=cog_metadata(product, tile, period, aggregation, prefixes), **encoding,
    )  # fmt: skip
    names = names or sources
    if checks:
        label = f"tile {tile} {product} {Period.parse(period).label}"
        _checked_build(sources, cog, names, label, checks, baseline, findings, cog_options)
    else:
        build_cog(sources, cog, combine=combine, names=names, **cog_options)
    if thumbnail:
        from etm import quicklook  # matplotlib: region jobs only

        quicklook.render(
            cog, thumbnail, product=product, period=period, aggregation=aggregation, tiles=sources
        )
    stac_item = stac.item_for(
        cog,
        href=item_href,
        collection=collection,
        product=product,
        tile=tile,
        period=period,
        aggregation=aggregation,
        thumbnail=os.path.basename(thumbnail) if thumbnail else None,
    )
    stac.write(stac_item, item)
    log.info("wrote STAC item %s%s", item_href, " and its quicklook" if thumbnail else "")
    if kept_items:
        texts = {item_href: stac.as_json(stac_item)}
        for source, tile in zip(sources, tile_items, strict=True):
            texts[tile["href"]] = stac.as_json(stac.item_for(source, **tile))
        stac.keep_items(kept_items, texts)
