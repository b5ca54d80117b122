"""Chips that a tile-month's mosaic refused or found suspect, kept for the verifier's reports.

Each tile-month's mosaic writes its findings as a small JSON log (even when it fails).
When a run ends, the main process gathers the logs written during the run into the
reports folder's ``findings.json``; the verifier shows every finding whose chip has not
changed since, on the terminal, in ``chip_findings.csv`` and on the heatmaps.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from etm.inventory import ChipMonth, Verification
from etm.listing import Listing, StoredObject

RECORDS = "findings.json"


@dataclass(frozen=True)
class ChipFinding:
    """A chip refused or found suspect by its month's mosaic, and when."""

    chip: str
    status: str
    reason: str
    recorded: float


def gather(
    listing: Listing,
    folder: str,
    since: float,
    read: Callable[[StoredObject], str],
) -> dict[str, list[ChipFinding]]:
    """The findings logs written since a time, by log path relative to ``folder``.

    Parameters
    ----------
    listing : Listing
        Lists the logs folder (local or S3).
    folder : str
        The findings logs' folder, as the listing spells it.
    since : float
        The run's start (POSIX time): older logs are from earlier runs.
    read : callable
        Reads one log's text; called only for logs holding findings (an empty log is
        ``[]``, two bytes: its listed size says so).

    Returns
    -------
    dict
        Every log of the run, with its findings (none for an empty log).
    """
    found = {}
    for log in listing.walk(folder):
        if log.mtime < since:
            continue
        records = json.loads(read(log)) if log.size > 2 else []
        found[log.path[len(folder) :].lstrip("/")] = [
            ChipFinding(record["chip"], record["status"], record["reason"], log.mtime)
            for record in records
        ]
    return found


def load(path: str) -> dict[str, list[ChipFinding]]:
    """The findings kept in the reports folder, by log path (none if there is no file)."""
    if not os.path.exists(path):
        return {}
    with open(path) as stream:
        kept = json.load(stream)
    return {log: [ChipFinding(**finding) for finding in found] for log, found in kept.items()}


def save(path: str, findings: dict[str, list[ChipFinding]]) -> None:
    """Keep findings in the reports folder; logs without findings are left out."""
    kept = {log: [asdict(f) for f in found] for log, found in sorted(findings.items()) if found}
    partial = f"{path}.partial"
    with open(partial, "w") as stream:
        json.dump(kept, stream, indent=1)
    os.replace(partial, path)


def current(
    findings: dict[str, list[ChipFinding]],
    verification: Verification,
    named: Callable[[str], str],
) -> dict[ChipMonth, ChipFinding]:
    """The findings that still hold: their chip is still the file the verifier uses, and
    has not been written again since it was judged.

    Parameters
    ----------
    findings : dict
        By log path.
    verification : Verification
    named : callable
        A chip's config path as findings name it (``s3://...`` on S3).
    """
    judged = _flatten(findings.values())
    names = {finding.chip for finding in judged}
    by_name = {}
    for tile, inventory in verification.inventories.items() if names else ():
        for key, chip_file in inventory.files.items():
            if (name := named(chip_file.path)) in names:
                by_name[name] = (ChipMonth(tile, *key), chip_file)
    held = {}
    for finding in judged:
        chip_month, chip_file = by_name.get(finding.chip, (None, None))
        if chip_month is not None and chip_file.mtime <= finding.recorded:
            held[chip_month] = finding
    return held


def _flatten(groups: Iterable[list[ChipFinding]]) -> list[ChipFinding]:
    return [finding for group in groups for finding in group]
