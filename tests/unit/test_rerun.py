"""missing_chips: rerun for a chip deleted while the run reads it (etm.rerun.restore): the
month's job reruns the model, once per chip-year on a machine, and reads what it wrote;
locally and on a real S3 HTTP endpoint (moto on loopback)."""

from __future__ import annotations

import shlex
import sys
import threading
from pathlib import Path

import pytest

from etm.errors import ChipReadError, RerunError
from etm.rerun import ChipRerun, restore

CHIP_FILE = "chip43.4N-102.8E/2020/etasw_202007.tif"

#: A stand-in model: appends a line to its log, then writes the chip file (the argument
#: after --write, if any) under the tile prefix.
MODEL = """
import pathlib, sys, time
log, prefix, chip, year, *write = sys.argv[1:]
with open(log, "a") as stream:
    stream.write(f"{chip} {year}\\n")
time.sleep(0.2)  # long enough for another job of the chip-year to wait for this one
if write:
    target = pathlib.Path(prefix) / chip / year / write[1]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"chip")
"""


def model(tmp_path: Path, prefix: str, *arguments: str) -> ChipRerun:
    script = tmp_path / "model.py"
    script.write_text(MODEL)
    extra = " ".join(shlex.quote(argument) for argument in arguments)
    template = f"{sys.executable} {script} {tmp_path / 'model.log'} {{prefix}} {{chip}} {{year}}"
    return ChipRerun(f"{template} {extra}", "r50.0_tile6", 2020, prefix)


def runs(tmp_path: Path) -> list[str]:
    log = tmp_path / "model.log"
    return log.read_text().splitlines() if log.exists() else []


def test_a_chip_deleted_locally_is_rerun_and_read_where_the_model_wrote_it(tmp_path):
    """The file was listed under a later run prefix; the model writes under the first."""
    first, later = tmp_path / "Run01_01_2020" / "tile6", tmp_path / "Run06_01_2020" / "tile6"
    listed = str(later / CHIP_FILE)
    rerun = model(tmp_path, str(first), "--write", "etasw_202007.tif")
    name, identity = restore(rerun, listed, listed, str(tmp_path))
    assert name == str(first / CHIP_FILE) and Path(name).read_bytes() == b"chip"
    assert identity.startswith("stat:")
    assert runs(tmp_path) == ["chip43.4N-102.8E 2020"]


def test_jobs_of_one_chip_year_rerun_the_model_once(tmp_path):
    prefix = tmp_path / "tile6"
    rerun = model(tmp_path, str(prefix), "--write", "etasw_202007.tif")
    listed = str(prefix / CHIP_FILE)
    found = []

    def job():
        found.append(restore(rerun, listed, listed, str(tmp_path))[0])

    jobs = [threading.Thread(target=job) for _ in range(3)]
    for thread in jobs:
        thread.start()
    for thread in jobs:
        thread.join()
    assert found == [listed] * 3
    assert runs(tmp_path) == ["chip43.4N-102.8E 2020"]
    assert not list(tmp_path.glob("*.lock"))  # nothing left behind


def test_a_chip_the_model_does_not_write_again_is_one_error_naming_it(tmp_path):
    listed = str(tmp_path / "tile6" / CHIP_FILE)
    with pytest.raises(ChipReadError) as error:
        restore(model(tmp_path, str(tmp_path / "tile6")), listed, listed, str(tmp_path))
    assert str(error.value) == (
        f"chip {listed}: was deleted since this run listed it, and the model's rerun did not "
        "write it again; see this month's job log under logs/, then run again to rerun it"
    )


def test_a_failed_rerun_is_one_error_naming_the_chip_year(tmp_path):
    listed = str(tmp_path / "tile6" / CHIP_FILE)
    rerun = ChipRerun("exit 3", "r50.0_tile6", 2020, str(tmp_path / "tile6"))
    with pytest.raises(RerunError, match=r"^rerun of tile r50.0_tile6 chip43.4N-102.8E 2020 "):
        restore(rerun, listed, listed, str(tmp_path))


def test_a_chip_deleted_from_s3_is_rerun_and_fetched_with_its_new_etag(tmp_path, s3_out):
    """The model (here: a put by the test's command) writes under the tile's first prefix."""
    key = f"Run01_01_2020/tile6/{CHIP_FILE}"
    put = (
        f'{sys.executable} -c \'import boto3; boto3.client("s3").put_object('
        f'Bucket="out", Key="{key}", Body=b"new chip")\''
    )
    rerun = ChipRerun(put, "r50.0_tile6", 2020, "s3://out/Run01_01_2020/tile6")
    local = tmp_path / "storage" / "out" / "Run06_01_2020" / "etasw_202007.tif"
    name, identity = restore(
        rerun, f"s3://out/Run06_01_2020/tile6/{CHIP_FILE}", str(local), str(tmp_path)
    )
    assert name == f"s3://out/{key}" and local.read_bytes() == b"new chip"
    etag = s3_out.client().head_object(Bucket="out", Key=key)["ETag"].strip('"')
    assert identity == f"etag:{etag}"
