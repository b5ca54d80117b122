"""Run a workflow step with its log file, turning an etm error into one line.

Steps run either in a script's own process (:func:`run_job`) or, for the mosaics and chip
baselines that make up nearly every job and the completeness heatmaps, in a thread of the
Snakemake process that runs the job (:func:`publish_job`, :func:`baseline_job`,
:func:`completeness_job`): that spares each job starting Python and importing rasterio,
numpy, pystac or matplotlib and Snakemake's script support, about 1 CPU-second a job.
Beyond :data:`THREAD_JOBS` at once, a job runs in a process of its own (:func:`run_step`).
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import logging
import os
import pickle
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

from etm.errors import EtmError, say

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


class _OneLine(logging.Handler):
    """An error record as one ``etm error:`` line on the terminal (one per line of its
    message: an error naming several chips), never glued to a line of Snakemake's that a
    job's thread would otherwise write into (:func:`etm.errors.say`)."""

    def emit(self, record: logging.LogRecord) -> None:
        say(record.getMessage().splitlines(), prefix="etm error: ")


_JOB_LOGS = _JobLogs()
log.addHandler(_JOB_LOGS)
log.setLevel(logging.INFO)


#: An error in a job's log file, as :func:`_logging_to` writes it.
LOGGED_ERROR = re.compile(r"^\S+ \S+ ERROR [\w.]+: (?P<message>.*)$", re.MULTILINE)


def logged_errors(text: str) -> list[str]:
    """The errors a job's log file holds, one line each."""
    return [found["message"] for found in LOGGED_ERROR.finditer(text)]


@contextlib.contextmanager
def _logging_to(log_path: str) -> Iterator[None]:
    """This thread's etm records to the job's log file, and its errors as one line to stderr."""
    to_file = logging.FileHandler(log_path)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    to_stderr = _OneLine(logging.ERROR)
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
    if not _logged(log_path, step, arguments):
        sys.exit(1)


def _logged(log_path: str, step: Callable[..., object], arguments: dict) -> bool:
    """Run the step with this thread's logging to the log file; False after an EtmError,
    logged to the file and as one line to stderr."""
    with _logging_to(log_path):
        try:
            step(**arguments)
        except EtmError as error:
            log.error("%s", error)
            return False
        except OSError as error:
            if error.errno not in FULL_OR_READ_ONLY:
                raise
            log.error("%s", full_or_read_only(error, log_path))
            return False
    return True


#: A write the disk refused: full, over quota, or read-only.
FULL_OR_READ_ONLY = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def full_or_read_only(error: OSError, log_path: str) -> str:
    """The line for a write the disk refused (:data:`FULL_OR_READ_ONLY`): the file, or,
    when the error names none (a write to an open file), the job by its log."""
    where = error.filename or f"a file of the job logging to {log_path}"
    return (
        f"{where}: cannot be written ({error.strerror}): free space on its disk, or make it "
        "writable, then run again"
    )


#: Jobs that run at once in threads of one Snakemake process; any more each run in a
#: process of its own. A job holds the GIL for about 0.1-0.4 s of Python (rasterio's opens
#: and closes, pystac; measured with py-spy on a real-size tile-month), so a box running
#: dozens of jobs at once in threads would wait on the GIL, not compute.
THREAD_JOBS = 4
_THREAD_SLOTS = threading.BoundedSemaphore(THREAD_JOBS)


def run_step(log_path: str, step: str, **arguments) -> JobFailed | None:
    """Run a job's step in this thread, or, with THREAD_JOBS running, in a new process.

    Parameters
    ----------
    log_path : str
        The job's log file.
    step : str
        ``module:function`` in etm, e.g. ``etm.publish:publish``.
    **arguments
        Passed to the step.

    Returns
    -------
    JobFailed or None
        For an :class:`EtmError`: logged to the file and as one line to stderr, the rule
        raises it, so that Snakemake reports the job failed with no traceback of etm's.
    """
    if _THREAD_SLOTS.acquire(blocking=False):
        try:
            done = _logged(log_path, _function(step), arguments)
        finally:
            _THREAD_SLOTS.release()
    else:
        job = pickle.dumps((log_path, step, arguments))
        apart = subprocess.run([sys.executable, "-m", "etm.joblog"], input=job, check=False)
        done = apart.returncode == 0
    return None if done else JobFailed(f"stopped by the error above (log: {log_path})")


def _function(step: str) -> Callable[..., object]:
    """``module:function`` imported (in the job: parsing the Snakefile never imports it)."""
    module, name = step.split(":")
    return getattr(importlib.import_module(module), name)


def publish_job(input, output, params, threads: int, resources, log_files) -> JobFailed | None:
    """The rules mosaic_tile and mosaic_region: :func:`etm.publish.publish` of their period's
    plan (``params.plan``) on their files.

    Parameters are the ``run:`` block's own (Snakemake's named lists).
    """
    optional = dict(
        baseline=input.get("baseline"),
        findings=log_files.get("findings"),
        record=log_files.get("provenance"),
    )  # Snakemake's files are str subclasses: passed on as str, to pickle plainly
    return run_step(
        str(log_files.job),
        "etm.publish:publish",
        plan=params.plan,
        sources=[str(source) for source in input.sources],
        cog=str(output.cog),
        item=str(output.item),
        threads=threads,
        tmpdir=resources.tmpdir,
        **{name: str(path) if path else None for name, path in optional.items()},
    )


def completeness_job(input, log_files) -> JobFailed | None:
    """The rule completeness: :func:`etm.report.render` from the verification snapshot."""
    snapshot = str(input[0])
    return run_step(
        str(log_files[0]),
        "etm.report:render",
        snapshot_path=snapshot,
        folder=os.path.dirname(snapshot),
    )


def baseline_job(output, options: dict, log_files) -> JobFailed | None:
    """The rule chip_baseline: :func:`etm.checks.write_baseline` for its tile, with the
    ``options`` of :meth:`etm.run.Process.baseline_options`."""
    return run_step(
        str(log_files[0]),
        "etm.checks:write_baseline",
        baseline=str(output.baseline),
        **options,
    )


if __name__ == "__main__":  # a job run apart by run_step: its arguments come on stdin
    log_path, step, arguments = pickle.load(sys.stdin.buffer)
    run_job(log_path, _function(step), **arguments)
