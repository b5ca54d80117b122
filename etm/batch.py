"""A run's AWS Batch jobs: names Batch accepts, their retry strategy, and how to find and end
them when their run is gone.

Every job of a run is named ``etm-<run>-<what it runs>-<hash>``: letters, digits, ``-`` and
``_`` only, at most 128 characters, starting with a letter (Batch's rule for ``jobName`` and
``jobDefinitionName``; moto's ``JOB_NAME_REGEX``), where ``<run>`` is the first 12 hex digits
of the run's id (:attr:`etm.lock.Holder.run`). ListJobs finds a run's jobs by that prefix,
for ``etm batch jobs`` and ``etm batch cancel`` and for the next run on the same prefix.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from etm.errors import EtmError, escaped

#: Batch's limit on job and job definition names.
NAME_LENGTH = 128
#: Characters Batch accepts in names, after the first (a letter or digit).
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]+")
#: Digits of the run id in a job's name.
RUN_DIGITS = 12
#: Job states until a job has ended (DescribeJobs, ListJobs).
ACTIVE = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
#: A job definition's retry strategy: Batch starts a job again on another instance when its
#: Spot instance was reclaimed (its attempt ends with no exit code and this status reason,
#: AWS Batch user guide, "Automated job retries"), at most twice; any other failure, a
#: refused chip say, fails its container once: whether it has an exit code (a container that
#: ran) or only a reason (an image that could not be pulled). Batch retries what no entry
#: matches.
RETRY_STRATEGY = {
    "attempts": 3,
    "evaluateOnExit": [
        {"onStatusReason": "Host EC2*", "action": "RETRY"},
        {"onExitCode": "*", "action": "EXIT"},
        {"onReason": "*", "action": "EXIT"},
    ],
}
#: DescribeJobs takes at most this many job ids a call.
DESCRIBE_BATCH = 100
#: The tag naming a job's run, on every job definition and job.
RUN_TAG = "etm:run"

#: This process's run id (:meth:`etm.run.MainProcess`), which names its jobs.
_RUN: list[str] = []


def use_run(run: str) -> None:
    """Name this process's Batch jobs after its run (the id its output lock holds)."""
    _RUN[:] = [run]


def current_run() -> str:
    """This process's run id; a new one if none was set."""
    if not _RUN:
        use_run(uuid.uuid4().hex)
    return _RUN[0]


def runnable_line(count: int, waited_s: float, queue: str) -> str:
    """The line saying that jobs wait in RUNNABLE, and what usually keeps them there."""
    return (
        f"{count} AWS Batch jobs wait to start (RUNNABLE), one for {waited_s / 60:.0f} min, "
        f"on queue {queue}: its compute environment may be INVALID or disabled, its subnets "
        "may have no route to ECR and S3, its instance types may have no Spot capacity, or "
        "its maxvCpus may be below a container's vCPUs (docs/aws.md: Runbook, jobs do not start)"
    )


def run_prefix(run: str) -> str:
    """The start of the names of every job of a run."""
    return f"etm-{run[:RUN_DIGITS]}-"


def what_runs(name: str, wildcards: Iterable[str] = ()) -> str:
    """What a job runs, for its name: a group's id (``tile_r50.0_tile6_2001-2002``), or a
    rule's name with its wildcards' values (``chip_baseline_r50.0_tile6``; Snakemake names
    a job submitted alone after its rule only)."""
    return "_".join([name, *wildcards])


def first_period(wildcards: Iterable[Mapping[str, str]]) -> list[str]:
    """A group's first period and product, of its jobs' wildcards: they tell apart the
    containers of one group id that ``--group-components`` splits (``202001``, ``etasw``)."""
    first = min((w.get("period", ""), w.get("product", "")) for w in wildcards)
    return [part for part in first if part]


def job_name(run: str, what: str) -> str:
    """A Batch job (and job definition) name for what a job runs, unique to it.

    Parameters
    ----------
    run : str
        The run's id (hex).
    what : str
        What the job runs (:func:`what_runs`).

    Returns
    -------
    str
        :func:`run_prefix`, ``what`` with every run of other characters as ``-`` (cut to
        fit), and 8 hex digits of ``what``'s SHA-256, which keep names unique where their
        readable parts are alike (``r50.0`` and ``r50-0``).
    """
    digest = hashlib.sha256(what.encode()).hexdigest()[:8]
    prefix = run_prefix(run)
    room = NAME_LENGTH - len(prefix) - len(digest) - 1
    readable = _NOT_IN_NAME.sub("-", what).strip("-")[:room].rstrip("-")
    return f"{prefix}{readable}-{digest}" if readable else f"{prefix}{digest}"


def batches(ids: list[str], size: int = DESCRIBE_BATCH) -> Iterator[list[str]]:
    """Job ids in groups DescribeJobs takes in one call."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


@dataclass(frozen=True)
class RunJob:
    """One Batch job of a run, as ListJobs reports it."""

    id: str
    name: str
    status: str
    definition: str | None = None


#: An AWS region's name as botocore checks it (``botocore.utils.validate_region_name``), but
#: whole: its ``$`` lets a final newline through, into the endpoint's host name.
REGION_NAME = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")


def client(region: str):
    """A Batch client of ``region`` (``etm batch``, and a run checking a gone run's jobs).

    Raises
    ------
    EtmError
        If ``region`` is not a region's name.
    """
    import boto3

    from etm import s3

    if not REGION_NAME.fullmatch(region):
        raise EtmError(f"'{escaped(region)}' is not an AWS region's name (us-west-2, say)")
    return boto3.client("batch", region_name=region, config=s3.client_config())


def run_jobs(client, queue: str, run: str) -> list[RunJob]:
    """Every job of a run in a queue, whatever its state (ListJobs by name prefix: with
    filters, Batch returns jobs of every status)."""
    pages = client.get_paginator("list_jobs").paginate(
        jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [f"{run_prefix(run)}*"]}]
    )
    return [
        RunJob(job["jobId"], job["jobName"], job["status"], job.get("jobDefinition"))
        for page in pages
        for job in page.get("jobSummaryList", ())
    ]


def unended(client, queue: str, run: str) -> list[RunJob]:
    """A run's jobs that have not ended."""
    return [job for job in run_jobs(client, queue, run) if job.status in ACTIVE]


def cancel(client, queue: str, run: str, reason: str) -> tuple[int, int]:
    """End every job of a run that has not ended, and deregister the job definitions of all
    its jobs.

    Returns
    -------
    tuple of int
        Jobs ended, job definitions deregistered.
    """
    jobs = run_jobs(client, queue, run)
    ended = 0
    for job in jobs:
        if job.status in ACTIVE:
            client.terminate_job(jobId=job.id, reason=reason)  # cancels one not yet started
            ended += 1
    definitions = {job.definition for job in jobs if job.definition}
    for definition in sorted(definitions):
        client.deregister_job_definition(jobDefinition=definition)
    return ended, len(definitions)


def describe_unended(jobs: list[RunJob], queue: str, run: str, region: str) -> str:
    """The line saying which of a gone run's jobs have not ended, and how to end them."""
    states = ", ".join(
        f"{sum(job.status == state for job in jobs)} {state}"
        for state in ACTIVE
        if any(job.status == state for job in jobs)
    )
    return (
        f"{len(jobs)} of its AWS Batch jobs have not ended ({states}, queue {queue}) and may "
        f"still write: end them with `etm batch cancel --run {run} --queue {queue} --region "
        f"{region}`, then run again"
    )
