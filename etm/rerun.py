"""missing_chips: rerun. Run the model again for one missing chip and year, through the
team's own command, and record that it ran; or, for a chip deleted while the run reads its
tile-year, from the month's own job (:func:`restore`).

The rerun job's output is a marker file, never a chip, so that no Snakemake cleanup of a
failed or incomplete job can ever delete a chip.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shlex
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from etm import s3
from etm.errors import ChipReadError, RerunError
from etm.listing import StoredObject

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


@dataclass(frozen=True)
class ChipRerun:
    """How the model is rerun for a chip of one tile-year: the config's command, and the
    tile's prefix it writes to (its first unmosaicked_inputs entry, as the user knows it)."""

    template: str
    tile: str
    year: int
    prefix: str

    def command(self, chip: str) -> str:
        """The command line rerunning the model for ``chip`` in this tile-year."""
        values = dict(tile=self.tile, chip=chip, year=str(self.year), prefix=self.prefix)
        return rerun_command(self.template, **values)


def run_model(command: str, marker: str, *, tile: str, chip: str, year: str) -> None:
    """Run the model's rerun command, then write the marker (rule rerun_chip).

    Raises
    ------
    RerunError
        If the command exits with a non-zero status; no marker is written.
    """
    record = dict(tile=tile, chip=chip, year=int(year), command=command, started=time.time())
    record["seconds"] = _run(command, tile=tile, chip=chip, year=year)
    with open(marker, "w") as stream:
        json.dump(record, stream)


def _run(command: str, *, tile: str, chip: str, year: str) -> float:
    """Run the model's rerun command (bash), logging its output; the seconds it took.

    Raises
    ------
    RerunError
        If the command exits with a non-zero status.
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
    seconds = round(time.time() - started, 1)
    log.info("the rerun command finished in %.1f s", seconds)
    return seconds


def restore(
    rerun: ChipRerun, name: str, listed_mtime: float, local: str, scratch: str
) -> StoredObject:
    """A chip file on S3 gone or rewritten since the run listed it, as the model writes it
    again.

    The model writes under ``rerun.prefix``, which may not be the run prefix the file was
    listed under: the file is looked for there first, then where it was, and taken only if
    it is newer than the listed file (an older copy is not the model's new output). Jobs of
    one machine rerun the model once per chip-year: the jobs waiting meanwhile read what
    that rerun wrote, or fail with its error.

    Parameters
    ----------
    rerun : ChipRerun
        The month's tile-year.
    name : str
        The chip file as the run listed it, ``s3://bucket/key``.
    listed_mtime : float
        Its modification time when the run listed it.
    local : str
        Where the month's job reads it (where Snakemake would have put it).
    scratch : str
        A folder of this machine, for the lock of each chip-year's rerun.

    Returns
    -------
    StoredObject
        The file read (its ``path`` is ``bucket/key``).

    Raises
    ------
    RerunError
        If the model's command fails.
    ChipReadError
        If the model did not write the file again.
    """
    chip, year, file_name = name.split("/")[-3:]
    written = f"{rerun.prefix.rstrip('/')}/{chip}/{year}/{file_name}"
    places = [p.removeprefix("s3://") for p in dict.fromkeys([written, name])]
    os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
    with _one_rerun(scratch, rerun, chip) as failure:
        found = _newer(places, local, listed_mtime)
        if found is None:
            log.warning("chip %s: gone since this run listed it; rerun the model", name)
            try:
                _run(rerun.command(chip), tile=rerun.tile, chip=chip, year=year)
            except RerunError as error:
                failure.write(str(error))
                raise
            found = _newer(places, local, listed_mtime)
    if found is None:
        raise ChipReadError(
            name,
            "was deleted since this run listed it, and the model's rerun did not write it "
            "again; see this month's job log under logs/, then run again to rerun it",
        )
    log.info("chip %s: read s3://%s (etag %s)", name, found.path, found.etag)
    return found


def _newer(places: Sequence[str], local: str, than: float) -> StoredObject | None:
    """The first of the places (``bucket/key``) holding a file newer than ``than``,
    downloaded to ``local``."""
    for place in places:
        found = s3.download_to(place, local)
        if found is not None and found.mtime > than:
            return found
    return None


@contextlib.contextmanager
def _one_rerun(scratch: str, rerun: ChipRerun, chip: str) -> Iterator[IO[str]]:
    """Hold this machine's lock on the rerun of a chip-year: an flock (the system releases
    it when a job dies) on a file the holder removes, so that none is left behind. The
    holder writes a failed rerun's error into it: the jobs that waited on that file raise
    it too, and the next job locks a new file.

    Raises
    ------
    RerunError
        The error of the rerun this job waited for.
    """
    path = os.path.join(scratch, f"etm-rerun-{rerun.tile}-{chip}-{rerun.year}.lock")
    while True:
        lock = open(path, "a+")
        fcntl.flock(lock, fcntl.LOCK_EX)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(lock.fileno()).st_ino:
                break
        lock.seek(0)
        failed = lock.read()
        lock.close()
        if failed:
            raise RerunError(failed)
    try:
        yield lock
    finally:
        os.unlink(path)
        lock.close()


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
