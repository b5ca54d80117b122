"""missing_chips: rerun for a chip gone or rewritten on S3 while the run reads it
(etm.rerun.restore): the month's job reruns the model, once per chip-year on a machine, and
reads the file it wrote; on a real S3 HTTP endpoint (moto on loopback)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from etm.errors import ChipReadError, RerunError
from etm.rerun import ChipRerun, restore

CHIP_FILE = "chip43.4N-102.8E/2020/etasw_202007.tif"
FIRST, LATER = "out/Run01_01_2020/tile6", "out/Run06_01_2020/tile6"

#: A stand-in model: appends a line to its log, then writes the chip file named after
#: --write, if any, under the tile prefix, or exits with the status after --exit.
MODEL = """
import sys, time, boto3
log, prefix, chip, year, *options = sys.argv[1:]
with open(log, "a") as stream:
    stream.write(f"{chip} {year}\\n")
time.sleep(0.3)  # long enough for the other jobs of the chip-year to wait for this one
if options and options[0] == "--exit":
    sys.exit(int(options[1]))
if options:
    bucket, _, key = prefix.removeprefix("s3://").partition("/")
    target = f"{key}/{chip}/{year}/{options[1]}"
    boto3.client("s3").put_object(Bucket=bucket, Key=target, Body=b"model's chip")
"""


def model(tmp_path: Path, *options: str) -> ChipRerun:
    script = tmp_path / "model.py"
    script.write_text(MODEL)
    log = tmp_path / "model.log"
    template = f"{sys.executable} {script} {log} {{prefix}} {{chip}} {{year}} {' '.join(options)}"
    return ChipRerun(template, "r50.0_tile6", 2020, f"s3://{FIRST}")


def runs(tmp_path: Path) -> int:
    log = tmp_path / "model.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def put(s3_out, path: str, body: bytes) -> float:
    """Store ``bucket/key``; its LastModified."""
    bucket, _, key = path.partition("/")
    s3_out.client().put_object(Bucket=bucket, Key=key, Body=body)
    return s3_out.client().head_object(Bucket=bucket, Key=key)["LastModified"].timestamp()


def restored(tmp_path: Path, rerun: ChipRerun, listed: str, listed_mtime: float):
    local = tmp_path / "storage" / listed.replace("/", "_")
    found = restore(rerun, f"s3://{listed}", listed_mtime, str(local), str(tmp_path))
    return found, local


def test_a_deleted_chip_is_rerun_and_read_where_the_model_wrote_it(tmp_path, s3_out):
    """The file was listed under a later run prefix; the model writes under the first."""
    found, local = restored(tmp_path, model(tmp_path, "--write", "etasw_202007.tif"),
                            f"{LATER}/{CHIP_FILE}", time.time() - 60)  # fmt: skip
    assert found.path == f"{FIRST}/{CHIP_FILE}" and local.read_bytes() == b"model's chip"
    etag = s3_out.client().head_object(Bucket="out", Key=found.path[4:])["ETag"].strip('"')
    assert found.identity == f"etag:{etag}"
    assert runs(tmp_path) == 1


def test_an_older_copy_under_the_models_prefix_is_not_taken_for_its_output(tmp_path, s3_out):
    older = put(s3_out, f"{FIRST}/{CHIP_FILE}", b"an older run's chip")
    time.sleep(1.1)  # S3 times are whole seconds
    listed = put(s3_out, f"{LATER}/{CHIP_FILE}", b"the listed chip")
    assert listed > older
    s3_out.client().delete_object(Bucket="out", Key=f"Run06_01_2020/tile6/{CHIP_FILE}")
    with pytest.raises(ChipReadError) as error:
        restored(tmp_path, model(tmp_path), f"{LATER}/{CHIP_FILE}", listed)
    assert str(error.value) == (
        f"chip s3://{LATER}/{CHIP_FILE}: was deleted since this run listed it, and the "
        "model's rerun did not write it again; see this month's job log under logs/, then "
        "run again to rerun it"
    )
    assert runs(tmp_path) == 1


def test_a_chip_rewritten_since_the_listing_is_read_as_it_is_now_without_a_rerun(tmp_path, s3_out):
    listed = put(s3_out, f"{FIRST}/{CHIP_FILE}", b"the listed chip") - 5
    found, local = restored(tmp_path, model(tmp_path), f"{FIRST}/{CHIP_FILE}", listed)
    assert found.path == f"{FIRST}/{CHIP_FILE}" and local.read_bytes() == b"the listed chip"
    assert runs(tmp_path) == 0


def test_jobs_of_one_chip_year_rerun_the_model_once_and_leave_no_lock(tmp_path, s3_out):
    rerun = model(tmp_path, "--write", "etasw_202007.tif")
    found = []

    def job():
        found.append(restored(tmp_path, rerun, f"{LATER}/{CHIP_FILE}", time.time() - 60)[0])

    jobs = [threading.Thread(target=job) for _ in range(3)]
    for thread in jobs:
        thread.start()
    for thread in jobs:
        thread.join()
    assert [f.path for f in found] == [f"{FIRST}/{CHIP_FILE}"] * 3
    assert runs(tmp_path) == 1
    assert not list(tmp_path.glob("*.lock"))


def test_the_jobs_waiting_on_a_failed_rerun_fail_with_its_error(tmp_path, s3_out):
    rerun = model(tmp_path, "--exit", "3")
    errors = []

    def job():
        try:
            restored(tmp_path, rerun, f"{LATER}/{CHIP_FILE}", time.time() - 60)
        except RerunError as error:
            errors.append(str(error))

    jobs = [threading.Thread(target=job) for _ in range(3)]
    for thread in jobs:
        thread.start()
    for thread in jobs:
        thread.join()
    assert (
        errors
        == [
            "rerun of tile r50.0_tile6 chip43.4N-102.8E 2020 failed: the command exited with "
            "status 3; its output is in this job's log; fix the command or the model, then run "
            "again"
        ]
        * 3
    )
    assert runs(tmp_path) == 1
    assert not list(tmp_path.glob("*.lock"))
