"""One writer per output prefix: the lock on a local folder (S3: tests/workflow)."""

import json
import os
import subprocess
import sys

import pytest

from etm.cli import unlock
from etm.lock import LOCK_NAME, OutputLock, OutputLockedError


def test_a_second_run_is_refused_naming_the_first_until_it_releases(tmp_path):
    first = OutputLock(str(tmp_path / "out"), on_s3=False, label="out")
    assert first.acquire() is None
    second = OutputLock(str(tmp_path / "out"), on_s3=False, label="out")
    with pytest.raises(OutputLockedError) as error:
        second.acquire()
    message = str(error.value)
    assert message.startswith("output prefix out is being written by the run started ")
    assert f"(process {os.getpid()}, in {os.getcwd()})" in message
    assert message.endswith("if that run is gone, remove its lock: etm unlock out")
    first.release()
    assert not (tmp_path / "out" / LOCK_NAME).exists()
    assert second.acquire() is None
    second.release()


def test_a_lock_left_by_a_killed_run_on_this_machine_is_taken_over(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    lock = OutputLock(str(tmp_path), on_s3=False, label=str(tmp_path))
    lock.acquire()
    document = json.loads((tmp_path / LOCK_NAME).read_text())
    (tmp_path / LOCK_NAME).write_text(json.dumps({**document, "pid": int(gone)}))
    note = OutputLock(str(tmp_path), on_s3=False, label="out").acquire()
    assert note.startswith("took over the lock of out left by the run started ")


def test_a_lock_from_another_machine_is_removed_only_by_etm_unlock(tmp_path):
    holder = dict(run="r", host="batch-head-7", pid=1, directory="/w", started="2026-11-29")
    (tmp_path / LOCK_NAME).write_text(json.dumps(holder))
    with pytest.raises(OutputLockedError, match="on host batch-head-7 .* etm unlock"):
        OutputLock(str(tmp_path), on_s3=False, label="x").acquire()
    assert unlock(str(tmp_path)).startswith(f"removed the lock of {tmp_path}, held by the run ")
    assert unlock(str(tmp_path)) == f"{tmp_path} has no lock"
