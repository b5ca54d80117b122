"""Run a workflow step with its log file, turning an etm error into one line.

Steps run either in a script's own process (:func:`run_job`) or, for the mosaics that make
up nearly every job, in a thread of the Snakemake process that runs the job
(:func:`publish_job`): that spares each job starting Python and importing rasterio, numpy,
pystac and Snakemake's script support, about 1 CPU-second a job.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Iterator

from etm.errors import EtmError

log = logging.getLogger("etm")


class JobFailed(Exception):
    """A job in the Snakemake process failed with an etm error, logged already."""


class _JobLogs(logging.Handler):
    """etm's records, each to the handlers of the job whose thread made it.

    Installed once: jobs side by side in one process only add and remove their entry, never
    the logger's handlers, which a thread logging meanwhile would skip.
    """

    def __init__(self) -> None:
        super().__init__()
        self.jobs: dict[int, tuple[logging.Handler, ...]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        for handler in self.jobs.get(record.thread, ()):
            if record.levelno >= handler.level:
                handler.handle(record)


_JOB_LOGS = _JobLogs()
log.addHandler(_JOB_LOGS)
log.setLevel(logging.INFO)


@contextlib.contextmanager
def _logging_to(log_path: str) -> Iterator[None]:
    """This thread's etm records to the job's log file, and its errors as one line to stderr."""
    to_file = logging.FileHandler(log_path)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    to_stderr = logging.StreamHandler(sys.stderr)
    to_stderr.setLevel(logging.ERROR)
    to_stderr.setFormatter(logging.Formatter("etm error: %(message)s"))
    thread = threading.get_ident()
    _JOB_LOGS.jobs[thread] = (to_file, to_stderr)
    try:
        yield
    finally:
        del _JOB_LOGS.jobs[thread]
        to_file.close()


def run_job(log_path: str, step: Callable[..., object], **arguments) -> None:
    """Call ``step(**arguments)`` in a script's process, with logging to the job's log file.

    Progress goes to the log file only; an :class:`EtmError` goes to the log file and,
    as one line, to stderr, and the process exits with status 1 (Snakemake then reports
    the job failed and points at its log).

    Parameters
    ----------
    log_path : str
        The job's log file (``log:`` of its rule).
    step : callable
        The work; its arguments are plain paths and values.
    **arguments
        Passed to ``step``.
    """
    with _logging_to(log_path):
        try:
            step(**arguments)
        except EtmError as error:
            log.error("%s", error)
            sys.exit(1)


def run_in_thread(log_path: str, step: Callable[..., object], **arguments) -> JobFailed | None:
    """Call ``step(**arguments)`` in this thread, with this thread's logging to the log file.

    Returns
    -------
    JobFailed or None
        For an :class:`EtmError`, logged to the file and as one line to stderr: the rule
        raises it, so that Snakemake reports the job failed with no traceback of etm's.
    """
    with _logging_to(log_path):
        try:
            step(**arguments)
        except EtmError as error:
            log.error("%s", error)
            return JobFailed(f"stopped by the etm error above (log: {log_path})")
    return None


def publish_job(input, output, params, threads: int, resources, log_files) -> JobFailed | None:
    """The rules mosaic_tile and mosaic_region: :func:`etm.publish.publish` on their files.

    Parameters are the ``run:`` block's own (Snakemake's named lists).
    """
    from etm.publish import publish  # in the job, not when Snakemake parses the Snakefile

    return run_in_thread(
        log_files.job,
        publish,
        sources=list(input.sources),
        cog=output.cog,
        item=output.item,
        thumbnail=output.get("thumbnail"),
        baseline=input.get("baseline") or None,
        findings=log_files.get("findings"),
        threads=threads,
        tmpdir=resources.tmpdir,
        **params.publish,
    )
