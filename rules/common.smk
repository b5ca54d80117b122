import functools
import re
import sys
from pathlib import Path

import yaml

from etm import plan
from etm.config import check_placeholder, load_settings
from etm.errors import EtmError
from etm.inventory import month_chip_paths
from etm.plan import Period
from etm.report import MISSING_CSV, SNAPSHOT_JSON, heatmap_path
from etm.rerun import rerun_command
from etm.run import MainProcess
from etm.s3 import S3Listing, protect
from etm.listing import LocalListing


def or_exit(step, *arguments, **options):
    """Run a main-process step; an etm error becomes one line on stderr and exit status 1."""
    try:
        return step(*arguments, **options)
    except EtmError as error:
        print(f"etm error: {error}", file=sys.stderr)
        sys.exit(1)


def say(lines, prefix="etm: "):
    for line in lines:
        print(f"{prefix}{line}", file=sys.stderr)


def warn(lines):
    say(lines, prefix="etm warning: ")


SCHEMA = yaml.safe_load((Path(workflow.basedir) / "config" / "schema.yaml").read_text())
# With a default storage provider (profiles/ec2, profiles/aws), every config path is
# `bucket/prefix` on S3; otherwise a local directory.
PROVIDER = workflow.storage_settings.default_storage_provider
SETTINGS = or_exit(load_settings, config, SCHEMA, local=not PROVIDER)
or_exit(
    check_placeholder,
    "default-storage-prefix",
    workflow.storage_settings.default_storage_prefix,
)
LISTING = S3Listing() if PROVIDER else LocalListing()
if PROVIDER:
    protect(p for tile in SETTINGS.tiles.values() for p in tile.prefixes)


def named(path):
    """A config path as the user knows it: an S3 URL, or a local path."""
    return f"s3://{path}" if PROVIDER else path


def stored(path):
    """A config path as Snakemake sees it: local, or an S3 object of the default storage."""
    return getattr(storage, PROVIDER)(named(path)) if PROVIDER else path


def published(name, suffix):
    return plan.published(SETTINGS, name, suffix)


wildcard_constraints:
    tile="|".join(re.escape(tile) for tile in SETTINGS.tiles),
    product="|".join(SETTINGS.products),
    year=r"\d{4}",
    period=r"\d{4}(\d{2})?",
    chip=r"chip-?\d+\.\dN-?\d+\.\dE",


# A container runs one job at a time (each job uses all its vCPUs): within a group of jobs
# (profiles/aws), `container_slots` is counted per container, not over the run.
resource_scopes:
    container_slots="local",


def cap_jobs_in_flight():
    """max_concurrent_containers, and --cores on clusters and clouds too; one job at a
    time per container. Returns whether jobs go to a cluster or cloud."""
    nodes = workflow.global_resources["_nodes"].value
    if nodes is None:
        # Local execution: each job is a process; `containers` counts them.
        if "containers" not in workflow.global_resources:
            workflow.register_resource("containers", SETTINGS.max_concurrent_containers)
        return False
    # Cluster or cloud: each submitted job (or group of jobs) is one container.
    workflow.register_resource("_nodes", min(nodes, SETTINGS.max_concurrent_containers))
    workflow.register_resource("container_slots", 1)
    # Snakemake stops counting cores once it submits jobs to a cluster or cloud;
    # `cpus` (each job's threads) keeps --cores a cap on the cores in flight.
    if workflow.resource_settings.cores:
        workflow.register_resource("cpus", workflow.resource_settings.cores)
    return True


# Job processes parse this file again; only the main process lists the archive.
if workflow.is_main_process:
    say(SETTINGS.notes)
    MAIN = MainProcess(
        SETTINGS,
        on_s3=bool(PROVIDER),
        work_prefix=workflow.storage_settings.default_storage_prefix,
    )
    say(or_exit(MAIN.verify))
    if MAIN.refuses:
        sys.exit(1)
    VERIFICATION, POLICY = MAIN.verification, MAIN.policy
    # Job processes have no verification; they never run the (local) catalog and report rules.
    PUBLICATIONS = plan.publications(SETTINGS, POLICY.skipped)
    if cap_jobs_in_flight():
        say([plan.containers(SETTINGS, PUBLICATIONS).describe()])
else:
    VERIFICATION, POLICY, PUBLICATIONS = None, plan.Policy(), []
# Products with at least one published period have a STAC Collection.
CATALOGUED = list(dict.fromkeys(p.product for p in PUBLICATIONS))


@functools.cache
def month_chips(tile, product, year, month):
    """(chip files, chips still missing) of a tile-month; in a job process, from a narrow
    listing. A month waiting for reruns of the model waits for their checkpoint."""
    at = (tile, product, int(year), int(month))
    if not workflow.is_main_process:
        return or_exit(month_chip_paths, SETTINGS, LISTING, *at), []
    reruns = lambda: checkpoints.chips_rerun.get(tile=tile, year=year)
    return or_exit(MAIN.month_chips, *at, reruns)


def tile_sources(wildcards):
    at = (wildcards.tile, wildcards.product, wildcards.year)
    chips = lambda month: month_chips(*at, month)[0]
    period = Period.parse(wildcards.period)
    return plan.tile_sources(SETTINGS, wildcards.tile, wildcards.product, period, chips)


def region_sources(wildcards):
    period = Period.parse(wildcards.period)
    return plan.region_sources(SETTINGS, wildcards.product, period)


def inputs_of(sources):
    """Input function: a rule's sources as Snakemake files."""
    return lambda wildcards: [stored(path) for path in sources(wildcards)[0]]


def baseline_of(wildcards):
    """Input function: a tile's usual NaN shares, for its months' chip checks."""
    if not Period.parse(wildcards.period).is_month:
        return []
    # ancient: a new baseline never redoes the months already published.
    return ancient(plan.BASELINE.format(tile=wildcards.tile))


def publish_options(wildcards, sources):
    """Params function: how a tile or region period is published (etm.publish.publish)."""
    paths, destination = sources(wildcards)
    period = Period.parse(wildcards.period)
    tile = getattr(wildcards, "tile", None)
    missing = []
    if tile and period.is_month:
        missing = month_chips(tile, wildcards.product, wildcards.year, period.month)[1]
    return plan.publish_options(
        SETTINGS, tile=tile, product=wildcards.product, period=period, sources=paths,
        names=[named(p) for p in paths], destination=named(destination),
        missing=[named(p) for p in missing],
    )  # fmt: skip
