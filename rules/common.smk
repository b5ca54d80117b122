import functools
import re
import sys
from pathlib import Path

import yaml

from etm.config import load_settings
from etm.errors import EtmError
from etm.inventory import ChipMonth, month_chip_paths, month_inventory, verify
from etm.notify import error_message, failed_jobs, send, success_message
from etm.listing import LocalListing
from etm.report import (
    MISSING_CSV,
    SNAPSHOT_JSON,
    heatmap_path,
    render,
    summary_lines,
    write_reports,
)
from etm.rerun import rerun_command
from etm.stac import collection_href
from etm import s3


def or_exit(step, *arguments):
    """Run a load-time step; an etm error becomes one line on stderr and exit status 1."""
    try:
        return step(*arguments)
    except EtmError as error:
        print(f"etm error: {error}", file=sys.stderr)
        sys.exit(1)


SCHEMA = yaml.safe_load((Path(workflow.basedir) / "config" / "schema.yaml").read_text())
SETTINGS = or_exit(load_settings, config, SCHEMA)
# With a default storage provider (profiles/ec2, profiles/aws), every config path is
# `bucket/prefix` on S3; otherwise a local directory.
PROVIDER = workflow.storage_settings.default_storage_provider
LISTING = s3.S3Listing() if PROVIDER else LocalListing()
if PROVIDER:
    s3.protect(p for tile in SETTINGS.tiles.values() for p in tile.prefixes)


def named(path):
    """A config path as the user knows it: an S3 URL, or a local path."""
    return f"s3://{path}" if PROVIDER else path


def stored(path):
    """A config path as Snakemake sees it: local, or an S3 object of the default storage."""
    return getattr(storage, PROVIDER)(named(path)) if PROVIDER else path


# Published files, relative to enduser_cog_output: COG (.tif) and STAC Item (.json) of a
# period, YYYYMM (a month) or YYYY (a year); the region's quicklook (.png).
TILE = "tiles/{tile}/{product}/{year}/{product}_{period}"
REGION = "mosaic/{product}/{year}/{product}_{period}"
REPORTS = SETTINGS.reports_dir
VERIFICATION_JSON = f"{REPORTS}/{SNAPSHOT_JSON}"


def published(name, suffix):
    """A published file's config path."""
    return f"{SETTINGS.output}/{name}.{suffix}"


wildcard_constraints:
    tile="|".join(re.escape(tile) for tile in SETTINGS.tiles),
    product="|".join(SETTINGS.products),
    year=r"\d{4}",
    period=r"\d{4}(\d{2})?",
    chip=r"chip-?\d+\.\dN-?\d+\.\dE",


def verify_chips():
    """List every tile prefix once; report; stop if chips are missing and that is an error."""
    verification = or_exit(verify, SETTINGS, LISTING)
    missing_csv = write_reports(verification)
    print(
        "\n".join(f"etm: {line}" for line in summary_lines(verification)),
        file=sys.stderr,
    )
    if verification.missing:
        action = {
            "error": "no job was started; rerun the model for them, or set missing_chips: "
            "skip to build the complete months only",
            "skip": "their months were left out (missing_chips: skip)",
            "rerun": "the model is rerun for their chips and years before their months "
            "(missing_chips: rerun)",
        }[SETTINGS.missing_chips]
        print(
            f"etm: {len(verification.missing)} chip files missing; {action}. "
            f"Full list: {missing_csv}",
            file=sys.stderr,
        )
        if SETTINGS.missing_chips == "error":
            # No job runs, so the heatmaps are drawn here for the operator.
            render(VERIFICATION_JSON, REPORTS)
            sys.exit(1)
    return verification


def cap_jobs_in_flight():
    """max_concurrent_containers, and --cores on clusters and clouds too."""
    nodes = workflow.global_resources["_nodes"].value
    if nodes is None:
        # Local execution: each job is a process; `containers` counts them.
        if "containers" not in workflow.global_resources:
            workflow.register_resource("containers", SETTINGS.max_concurrent_containers)
        return
    # Cluster or cloud: each submitted job (or group of jobs) is one container.
    workflow.register_resource("_nodes", min(nodes, SETTINGS.max_concurrent_containers))
    # Snakemake stops counting cores once it submits jobs to a cluster or cloud;
    # `cpus` (each job's threads) keeps --cores a cap on the cores in flight.
    if workflow.resource_settings.cores:
        workflow.register_resource("cpus", workflow.resource_settings.cores)


# Job processes parse this file again; only the main process lists the archive.
if workflow.is_main_process:
    VERIFICATION = verify_chips()
    if PROVIDER:
        # One listing of the outputs too: Snakemake's existence and mtime checks read it.
        or_exit(LISTING.snapshot, SETTINGS.output)
    cap_jobs_in_flight()


# The chips to rerun the model for, by (tile, year) (missing_chips: rerun); the tile-months
# left out for missing chips (missing_chips: skip).
RERUNS, SKIPPED = {}, set()
if workflow.is_main_process and SETTINGS.missing_chips == "rerun":
    for chip_month in VERIFICATION.missing:
        at = (chip_month.tile, chip_month.year)
        RERUNS.setdefault(at, {})[chip_month.chip.name] = None
elif workflow.is_main_process and SETTINGS.missing_chips == "skip":
    SKIPPED = VERIFICATION.incomplete


@functools.cache
def month_chips(tile, product, year, month):
    """(chip paths, chips still missing) of one tile-month.

    From the verifier's listing; for a month that waits for reruns of the model, from a
    new listing of its chips once they ran; in a job process, from a narrow listing.
    """
    at = (tile, product, int(year), int(month))
    if not workflow.is_main_process:
        return or_exit(month_chip_paths, SETTINGS, LISTING, *at), []
    if at not in VERIFICATION.incomplete:
        return VERIFICATION.chip_paths(*at), []
    # Until the tile-year's reruns ran, this raises, and the mosaic waits for them.
    checkpoints.chips_rerun.get(tile=tile, year=year)
    chips = VERIFICATION.expected[tile]
    inventory = or_exit(month_inventory, SETTINGS, LISTING, tile, chips, product, at[2])
    found = {chip: inventory.files.get((chip, *at[1:])) for chip in chips}
    return (
        [obj.path for obj in found.values() if obj],
        [
            VERIFICATION.expected_path(ChipMonth(tile, chip, *at[1:]))
            for chip, obj in found.items()
            if not obj
        ],
    )


def months_of(period):
    """The monthly periods a period is made of."""
    return [period] if len(period) == 6 else [f"{period}{m:02d}" for m in range(1, 13)]


def aggregation(wildcards):
    """How the period's pixels aggregate months: None for a month, else sum or mean."""
    if len(wildcards.period) == 6:
        return None
    return SETTINGS.annual_aggregation[wildcards.product]


def tile_sources(wildcards):
    """(sources, tile COG) of a tile-period: a month's chips, or a year's 12 monthly COGs."""
    product, year, period = wildcards.product, wildcards.year, wildcards.period
    at = dict(tile=wildcards.tile, product=product, year=year)
    if len(period) == 6:
        sources, _missing = month_chips(wildcards.tile, product, year, period[4:])
    else:
        sources = [
            published(TILE.format(**at, period=m), "tif") for m in months_of(period)
        ]
    return sources, published(TILE.format(**at, period=period), "tif")


def region_sources(wildcards):
    """(tile COGs, region COG) of a region period."""
    at = dict(product=wildcards.product, year=wildcards.year, period=wildcards.period)
    tiles = [published(TILE.format(tile=tile, **at), "tif") for tile in SETTINGS.tiles]
    return tiles, published(REGION.format(**at), "tif")


def inputs_of(sources):
    """Input function: a rule's sources as Snakemake files."""
    return lambda wildcards: [stored(path) for path in sources(wildcards)[0]]


def still_missing(wildcards):
    """Params function: chips of a tile-month still missing after the model's reruns."""
    if len(wildcards.period) != 6:
        return []
    at = (wildcards.tile, wildcards.product, wildcards.year, wildcards.period[4:])
    return [named(path) for path in month_chips(*at)[1]]


def names_of(sources):
    """Params function: what logs and errors call a rule's sources and destination."""

    def names(wildcards):
        paths, destination = sources(wildcards)
        return dict(sources=[named(p) for p in paths], destination=named(destination))

    return names


def publications():
    """(path relative to the output prefix, product) of every tile and region period.

    A tile's month is published when its chips are complete (or, with missing_chips:
    rerun, once the model was rerun for them), its year when all 12 months are; the
    region's period when every tile's is.
    """
    found = []
    for product in SETTINGS.products:
        for year in SETTINGS.years:
            periods = [f"{year}{month:02d}" for month in SETTINGS.months]
            periods += [f"{year}"] * SETTINGS.annual
            for period in periods:
                at = dict(product=product, year=year, period=period)
                tiles = [
                    tile
                    for tile in SETTINGS.tiles
                    if not any(
                        (tile, product, year, int(m[4:])) in SKIPPED
                        for m in months_of(period)
                    )
                ]
                found += [(TILE.format(tile=tile, **at), product) for tile in tiles]
                if len(tiles) == len(SETTINGS.tiles):
                    found.append((REGION.format(**at), product))
    return found


# Job processes have no verification; they never run the (local) catalog and report rules.
PUBLICATIONS = publications() if workflow.is_main_process else []
# Products with at least one published period have a STAC Collection.
CATALOGUED = list(dict.fromkeys(product for _, product in PUBLICATIONS))


def announce(snakemake_logs, succeeded):
    """onsuccess/onerror: send how the run ended to the config's notify targets.

    ``snakemake_logs`` are the run's log files, as Snakemake passes them to its handlers.

    Never raises: a notifier's failure is a warning, the run's exit status stays its own.
    """
    if not SETTINGS.notify:
        return
    try:
        missing, output = len(VERIFICATION.missing), named(SETTINGS.output)
        if succeeded:
            skipped = sorted(
                f"{tile} {product} {year}-{month:02d}"
                for tile, product, year, month in SKIPPED
            )
            message = success_message(output, len(PUBLICATIONS), skipped, missing)
        else:
            text = "".join(Path(path).read_text() for path in snakemake_logs)
            message = error_message(output, failed_jobs(text), missing, snakemake_logs)
        problems = send(
            message,
            SETTINGS.notify.get("sns_topic_arn"),
            SETTINGS.notify.get("webhook_url"),
        )
    except Exception as error:
        problems = [f"{type(error).__name__}: {error}"]
    for problem in problems:
        print(f"etm warning: notification failed: {problem}", file=sys.stderr)
