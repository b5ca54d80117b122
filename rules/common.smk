import logging
import re
import sys

from etm import plan
from etm.cog import tune_allocator
from etm.config import check_work_prefix, load_settings, read_schema
from etm.errors import or_exit, say
from etm.joblog import baseline_job, publish_job
from etm.plan import Period
from etm.run import MainProcess, OnJobStats, Process
from etm.workflow import (
    batch_queue,
    cap_jobs_in_flight,
    containers,
    keep_containers_whole,
)

# Before Snakemake starts the threads its jobs run in: a thread keeps the heap it has.
tune_allocator()

# With a default storage provider (profiles/ec2, profiles/aws), every config path is
# `bucket/prefix` on S3; otherwise a local directory.
PROVIDER = workflow.storage_settings.default_storage_provider
WORK_PREFIX = workflow.storage_settings.default_storage_prefix
SCHEMA = read_schema(workflow.basedir)
SETTINGS = or_exit(
    load_settings, config, SCHEMA, local=not PROVIDER, workflow_folder=workflow.basedir
)
or_exit(check_work_prefix, WORK_PREFIX)


def stored(path, retrieve=True):
    """A config path as Snakemake sees it: local, or an S3 object of the default storage
    (which a job reads itself with retrieve=False)."""
    return (
        getattr(storage, PROVIDER)(RUN.named(path), retrieve=retrieve)
        if PROVIDER
        else path
    )


def published(name, suffix, retrieve=True):
    return stored(plan.published(SETTINGS, name, suffix), retrieve)


def kept(template):
    """What a run keeps for its output prefix (logs, records, baselines), apart from every
    other prefix's; in the work area with a default storage provider."""
    return plan.kept(SETTINGS, template)


wildcard_constraints:
    tile="|".join(re.escape(tile) for tile in SETTINGS.tiles),
    product="|".join(SETTINGS.products),
    year=r"[0-9]{4}",
    period=r"[0-9]{4}([0-9]{2})?",
    chip=r"chip-?[0-9]+\.[0-9]N-?[0-9]+\.[0-9]E",


# Per container in a group of jobs (profiles/aws): jobs_per_container at once.
resource_scopes:
    container_slots="local",


# Job processes parse this file again; only the main process lists the archive, and forms
# the groups of jobs a cluster or cloud runs in containers.
ON_CLOUD = False
if workflow.is_main_process:
    say(SETTINGS.notes)
    RUN = MainProcess(
        SETTINGS,
        on_s3=bool(PROVIDER),
        work_prefix=WORK_PREFIX,
        local_storage=f"{workflow.storage_settings.local_storage_prefix}/{PROVIDER}",
    )
    say(or_exit(RUN.verify))
    if RUN.refuses:
        sys.exit(1)
    ON_CLOUD = cap_jobs_in_flight(workflow, SETTINGS)
    if ON_CLOUD:
        on_stats = OnJobStats(lambda: containers(workflow))
        logging.getLogger("snakemake.logging").addHandler(on_stats)
else:
    RUN = Process(SETTINGS, on_s3=bool(PROVIDER), work_prefix=WORK_PREFIX)


def container(wildcards):
    """Group function: on a cluster or cloud, the container a period's job runs in."""
    if ON_CLOUD:
        keep_containers_whole(workflow)
        year, tile = int(wildcards.year), wildcards.get("tile")
        return plan.container(SETTINGS, tile, wildcards.product, year)


def period_of(wildcards):
    """A tile or region period; a month waiting for reruns of the model waits for them."""
    tile, year = wildcards.get("tile"), wildcards.year
    reruns = lambda: checkpoints.chips_rerun.get(tile=tile, year=year)
    product, period = wildcards.product, Period.parse(wildcards.period)
    return dict(tile=tile, product=product, period=period, after_reruns=reruns)


def sources(wildcards):
    """Input function: a period's sources as Snakemake files; chips are ancient, as their
    provenance, not their times, says which months are outdated (etm.provenance)."""
    at = period_of(wildcards)
    chips = at["tile"] and at["period"].is_month
    paths = or_exit(RUN.sources, **at)[0]
    return [ancient(stored(path)) if chips else stored(path) for path in paths]


def outdated(wildcards):
    """Input function: the list of outdated months, for those months (Process.outdated)."""
    return RUN.outdated_inputs(**period_of(wildcards))


def period_plan(wildcards):
    """Params function: the period's etm.plan.PeriodPlan."""
    return or_exit(RUN.period_plan, **period_of(wildcards))


def baseline(wildcards):
    """Input function: a tile's usual NaN shares, for its months' chip checks; ancient, so
    that a new baseline never redoes the months already published."""
    is_month = Period.parse(wildcards.period).is_month
    return ancient(kept(plan.BASELINE).format(tile=wildcards.tile)) if is_month else []
