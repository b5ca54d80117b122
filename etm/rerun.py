"""missing_chips: rerun. Run the model again for one missing chip and year, through the
team's own command, and record that it ran.

The rerun job's output is a marker file, never a chip, so that no Snakemake cleanup of a
failed or incomplete job can ever delete a chip.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import time
from collections.abc import Sequence

from etm.errors import RerunError

log = logging.getLogger(__name__)

#: A rerun's marker (rule rerun_chip), and a tile-year's record of them (checkpoint
#: chips_rerun), in the work area.
MARKER = "reruns/{tile}/{year}/{chip}.json"
RECORD = "reruns/{tile}/{year}.json"


def rerun_command(template: str, **values: str) -> str:
    """The command line for one chip and year: the template with shell-quoted values.

    Parameters
    ----------
    template : str
        ``chip_rerun_command`` with {tile}, {chip}, {year} and {prefix} placeholders.
    **values : str
        The placeholders' values.

    Returns
    -------
    str
    """
    return template.format(**{name: shlex.quote(str(value)) for name, value in values.items()})


def run_model(command: str, marker: str, *, tile: str, chip: str, year: str) -> None:
    """Run the model's rerun command (bash), logging its output; then write the marker.

    Raises
    ------
    RerunError
        If the command exits with a non-zero status; no marker is written.
    """
    log.info("rerun the model for tile %s, %s, %s: %s", tile, chip, year, command)
    started = time.time()
    finished = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    for stream in (finished.stdout, finished.stderr):
        for line in stream.splitlines():
            log.info("model: %s", line)
    if finished.returncode != 0:
        raise RerunError(
            f"rerun of tile {tile} {chip} {year} failed: the command exited with status "
            f"{finished.returncode}; its output is in this job's log; fix the command or the "
            "model, then run again"
        )
    record = dict(tile=tile, chip=chip, year=int(year), command=command)
    record.update(started=started, seconds=round(time.time() - started, 1))
    with open(marker, "w") as stream:
        json.dump(record, stream)
    log.info("the rerun command finished in %.1f s", record["seconds"])


def record_reruns(markers: Sequence[str], record: str) -> None:
    """Collect the markers of a tile-year's reruns into one record (reruns/<tile>/<year>.json)."""
    reruns = []
    for marker in markers:
        with open(marker) as stream:
            reruns.append(json.load(stream))
    with open(record, "w") as stream:
        json.dump(sorted(reruns, key=lambda rerun: rerun["chip"]), stream, indent=1)
    log.info(
        "the model was rerun for %d chips: %s", len(reruns), ", ".join(r["chip"] for r in reruns)
    )
