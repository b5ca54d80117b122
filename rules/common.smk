import functools
import re
import sys
from pathlib import Path

import yaml

from etm.config import load_settings
from etm.errors import EtmError
from etm.inventory import month_chip_paths, verify
from etm.listing import LocalListing
from etm.report import summary_lines, write_reports
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


TILE_COG = f"{SETTINGS.output}/tiles/{{tile}}/{{product}}/{{year}}/{{product}}_{{year}}{{month}}.tif"
REGION_COG = (
    f"{SETTINGS.output}/mosaic/{{product}}/{{year}}/{{product}}_{{year}}{{month}}.tif"
)


wildcard_constraints:
    tile="|".join(re.escape(tile) for tile in SETTINGS.tiles),
    product="|".join(SETTINGS.products),
    year=r"\d{4}",
    month=r"\d{2}",


def verify_chips():
    """List every tile prefix once; report; stop if chips are missing and that is an error."""
    verification = or_exit(verify, SETTINGS, LISTING)
    missing_csv = write_reports(verification)
    print(
        "\n".join(f"etm: {line}" for line in summary_lines(verification)),
        file=sys.stderr,
    )
    if verification.missing:
        action = (
            "no job was started; rerun the model for them, or set missing_chips: skip "
            "to build the complete months only"
            if SETTINGS.missing_chips == "error"
            else "their months were left out (missing_chips: skip)"
        )
        print(
            f"etm: {len(verification.missing)} chip files missing; {action}. "
            f"Full list: {missing_csv}",
            file=sys.stderr,
        )
        if SETTINGS.missing_chips == "error":
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


@functools.cache
def chip_paths(tile, product, year, month):
    """The chips of one tile-month: from the verifier's listing, or in a job, a narrow one."""
    if workflow.is_main_process:
        return VERIFICATION.chip_paths(tile, product, int(year), int(month))
    return or_exit(
        month_chip_paths, SETTINGS, LISTING, tile, product, int(year), int(month)
    )


def tile_sources(wildcards):
    """(chip paths, tile COG path) of one tile-month."""
    when = dict(product=wildcards.product, year=wildcards.year, month=wildcards.month)
    destination = TILE_COG.format(tile=wildcards.tile, **when)
    return chip_paths(wildcards.tile, **when), destination


def region_sources(wildcards):
    """(tile COG paths, region COG path) of one region month."""
    when = dict(product=wildcards.product, year=wildcards.year, month=wildcards.month)
    tiles = [TILE_COG.format(tile=tile, **when) for tile in SETTINGS.tiles]
    return tiles, REGION_COG.format(**when)


def inputs_of(sources):
    """Input function: a rule's sources as Snakemake files."""
    return lambda wildcards: [stored(path) for path in sources(wildcards)[0]]


def names_of(sources):
    """Params function: what logs and errors call a rule's sources and destination."""

    def names(wildcards):
        paths, destination = sources(wildcards)
        return dict(sources=[named(p) for p in paths], destination=named(destination))

    return names


def all_targets(wildcards):
    """Every tile and region COG whose chips are complete."""
    incomplete = VERIFICATION.incomplete
    targets = []
    for product in SETTINGS.products:
        for year in SETTINGS.years:
            for month in SETTINGS.months:
                when = dict(product=product, year=year, month=f"{month:02d}")
                tiles = [
                    t
                    for t in SETTINGS.tiles
                    if (t, product, year, month) not in incomplete
                ]
                targets += [TILE_COG.format(tile=tile, **when) for tile in tiles]
                if len(tiles) == len(SETTINGS.tiles):
                    targets.append(REGION_COG.format(**when))
    return [stored(target) for target in targets]
