"""Run a workflow step with its log file, turning an etm error into one line and exit 1."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from etm.errors import EtmError

log = logging.getLogger("etm")


def run_job(log_path: str, step: Callable[..., object], **arguments) -> None:
    """Call ``step(**arguments)`` with logging to the job's log file.

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
    to_file = logging.FileHandler(log_path)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    to_stderr = logging.StreamHandler(sys.stderr)
    to_stderr.setLevel(logging.ERROR)
    to_stderr.setFormatter(logging.Formatter("etm error: %(message)s"))
    log.addHandler(to_file)
    log.addHandler(to_stderr)
    log.setLevel(logging.INFO)
    try:
        step(**arguments)
    except EtmError as error:
        log.error("%s", error)
        sys.exit(1)
