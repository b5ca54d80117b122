"""One writer per output prefix: the lock on a local folder (S3: tests/workflow)."""

import json
import multiprocessing
import os
import socket
import subprocess
import sys

import pytest

from etm.cli import unlock
from etm.errors import EtmError
from etm.lock import LOCK_NAME, LockLostError, OutputLock, OutputLockedError


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


def gone_pid() -> int:
    """The id of a process that has ended."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True)  # fmt: skip
    return int(finished.stdout)


def stale_lock(gone: int) -> str:
    """A lock left by a run killed on this machine: its process is gone."""
    holder = dict(run="gone", host=socket.gethostname(), pid=gone, directory="/w",
                  started="2026-12-01T00:00:00+00:00")  # fmt: skip
    return json.dumps(holder)


def race(prefix: str, on_s3: bool, ready, tried, results) -> None:
    """One run taking the lock, as soon as the other is ready too; it lives on until the
    other has tried as well (a winner gone would leave a stale lock, rightly taken over)."""
    ready.wait()
    try:
        OutputLock(prefix, on_s3=on_s3, label=prefix).acquire()
        results.put("won")
    except OutputLockedError:
        results.put("refused")
    except Exception as error:  # a takeover that trips over the other run's
        results.put(f"{type(error).__name__}: {error}")
    tried.wait()


def racing_pairs(prefix: str, on_s3: bool, pairs: int, reset) -> list[int]:
    """Winners of each pair of runs started together over a stale lock."""
    context = multiprocessing.get_context("fork")
    winners = []
    for _ in range(pairs):
        reset()
        ready, tried, results = context.Barrier(2), context.Barrier(2), context.Queue()
        runs = [
            context.Process(target=race, args=(prefix, on_s3, ready, tried, results)) for _ in "ab"
        ]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
        outcomes = [results.get(timeout=60) for _ in runs]
        assert set(outcomes) <= {"won", "refused"}, outcomes
        winners.append(outcomes.count("won"))
    return winners


@pytest.mark.slow  # 400 processes
def test_of_two_runs_taking_over_a_stale_lock_together_one_wins(tmp_path):
    lock = stale_lock(gone_pid())
    winners = racing_pairs(
        str(tmp_path), False, 200, lambda: (tmp_path / LOCK_NAME).write_text(lock)
    )
    assert set(winners) == {1}, winners  # never both; never none, as the lock was stale


def test_etm_unlock_refuses_the_lock_of_a_run_alive_on_this_machine(tmp_path):
    lock = OutputLock(str(tmp_path), on_s3=False, label=str(tmp_path))
    lock.acquire()
    with pytest.raises(
        EtmError,
        match=rf"held by the run .* which is running \(see `ps -p {os.getpid()}`: its main "
        r"process or its jobs\)",
    ):
        unlock(str(tmp_path))
    assert (tmp_path / LOCK_NAME).exists()
    assert unlock(str(tmp_path), force=True).startswith(f"removed the lock of {tmp_path}")


def test_a_run_releases_only_its_own_lock(tmp_path):
    first = OutputLock(str(tmp_path), on_s3=False, label="out")
    first.acquire()
    (tmp_path / LOCK_NAME).unlink()  # etm unlock --force, then another run takes it
    second = OutputLock(str(tmp_path), on_s3=False, label="out")
    second.acquire()
    with pytest.raises(LockLostError, match="^the lock of out was removed or replaced while "
                       "this run wrote"):  # fmt: skip
        first.release()
    first.release()  # once said, not again
    assert OutputLock(str(tmp_path), on_s3=False, label="out").holder() == second.held[0]


@pytest.mark.parametrize(
    "text",
    [
        b'{"run": "r", "host": "HOST", "pid": "abc", "directory": "/x", "started": "t"}',
        b'{"run": "r", "host": "HOST", "pid": -1, "directory": "/x", "started": "t"}',
        b'{"run": "r\xe9", "host": "HOST", "pid": 1, "directory": "/x", "started": "t"}',
        b"not json",
        b'{"run": "r", "host": "HOST", "pid": 999999999, "directory": "/x", "started": "t", '
        b'"batch": "notadict"}',
        b'{"run": "r", "host": "HOST", "pid": 999999999, "directory": "/x", "started": "t", '
        b'"batch": {"queue": "q"}}',
        b'{"run": 5, "host": "HOST", "pid": 1, "directory": "/x", "started": "t"}',
        b"[" * 60_000,
    ],
    ids=[
        "pid-text",
        "pid-negative",
        "not-utf8",
        "not-json",
        "batch-text",
        "batch-no-region",
        "run-number",
        "nested",
    ],  # fmt: skip
)
def test_an_unreadable_lock_refuses_a_run_with_an_etm_error(tmp_path, text):
    (tmp_path / LOCK_NAME).write_bytes(text.replace(b"HOST", socket.gethostname().encode()))
    with pytest.raises(OutputLockedError, match="^output prefix out is being written by "):
        OutputLock(str(tmp_path), on_s3=False, label="out").acquire()


def test_a_lock_of_a_pid_beyond_every_process_on_this_machine_is_taken_over(tmp_path):
    holder = dict(run="r", host=socket.gethostname(), pid=10**20, directory="/x", started="t")
    (tmp_path / LOCK_NAME).write_text(json.dumps(holder))
    assert "took over" in OutputLock(str(tmp_path), on_s3=False, label="out").acquire()


def test_a_lock_where_a_folder_stands_is_one_error_naming_it(tmp_path):
    (tmp_path / LOCK_NAME).mkdir()
    with pytest.raises(OutputLockedError, match=rf"cannot read the lock {tmp_path}/{LOCK_NAME} "):
        OutputLock(str(tmp_path), on_s3=False, label="out").acquire()


@pytest.mark.parametrize("kind", ["fifo", "dangling-link", "link"])
def test_a_lock_that_is_not_a_regular_file_is_one_error_not_a_wait(tmp_path, kind):
    lock = tmp_path / LOCK_NAME
    if kind == "fifo":
        os.mkfifo(lock)  # opening it for reading would wait for a writer forever
    else:
        target = tmp_path / "elsewhere.json"
        if kind == "link":
            target.write_text(
                json.dumps(dict(run="r", host="h", pid=1, directory="/", started="t"))
            )
        lock.symlink_to(target)
    expected = "a symbolic link" if "link" in kind else "not a regular file"
    for attempt in (
        lambda: OutputLock(str(tmp_path), on_s3=False, label="out").acquire(),
        lambda: unlock(str(tmp_path)),
    ):
        with pytest.raises(OutputLockedError, match=rf"^cannot read the lock .*\({expected}\)"):
            attempt()
    assert os.path.lexists(lock)


def test_a_run_is_refused_while_a_live_run_writes_a_folder_holding_or_inside_its_prefix(
    tmp_path,
):
    outer = OutputLock(str(tmp_path / "pub"), on_s3=False, label="pub")
    assert outer.acquire() is None
    inner = OutputLock(str(tmp_path / "pub" / "sub"), on_s3=False, label="pub/sub")
    with pytest.raises(
        OutputLockedError, match=rf"^output prefix pub/sub overlaps {tmp_path}/pub,"
    ):
        inner.acquire()
    assert not (tmp_path / "pub" / "sub" / LOCK_NAME).exists()
    outer.release()
    assert inner.acquire() is None
    with pytest.raises(OutputLockedError, match=rf"overlaps {tmp_path}/pub/sub, .* etm unlock "):
        outer.acquire()
    assert not (tmp_path / "pub" / LOCK_NAME).exists()
    inner.release()


def test_the_lock_of_a_gone_run_in_a_folder_inside_does_not_refuse_a_run(tmp_path):
    holder = dict(run="r", host=socket.gethostname(), pid=10**20, directory="/x", started="t")
    (tmp_path / "pub" / "sub").mkdir(parents=True)
    (tmp_path / "pub" / "sub" / LOCK_NAME).write_text(json.dumps(holder))
    outer = OutputLock(str(tmp_path / "pub"), on_s3=False, label="pub")
    assert outer.acquire() is None
    outer.release()


def test_the_lock_of_the_root_folder_is_not_the_working_directorys(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    holder = dict(run="r", host=socket.gethostname(), pid=os.getpid(), directory="/w", started="t")
    (tmp_path / LOCK_NAME).write_text(json.dumps(holder))
    assert OutputLock("/", on_s3=False, label="/")._path() == f"/{LOCK_NAME}"
    elsewhere = OutputLock(str(tmp_path.parent / "apart"), on_s3=False, label="apart")
    elsewhere.check_apart([("reports_dir", str(tmp_path.parent / "reports"), False)])


def test_etm_unlock_prints_a_hand_edited_locks_fields_escaped(tmp_path):
    holder = dict(run="r", host="otherhost\netm: lock removed, all good\x1b[31m", pid=1,
                  directory="/x\u202eevil", started="t")  # fmt: skip
    (tmp_path / LOCK_NAME).write_text(json.dumps(holder))
    said = unlock(str(tmp_path))
    assert "\n" not in said and "\x1b" not in said
    assert "on host otherhost\\netm: lock removed, all good\\x1b[31m (process 1" in said
    assert "in /x\\u202eevil)" in said  # U+202E would turn the rest of the line around


def test_an_interrupt_while_the_lock_is_taken_leaves_no_lock_nor_its_draft(tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt  # Ctrl-C once the lock is written aside

    monkeypatch.setattr(os, "link", interrupted)
    with pytest.raises(KeyboardInterrupt):
        OutputLock(str(tmp_path), on_s3=False, label="out").acquire()
    assert list(tmp_path.iterdir()) == []  # an empty lock refused every later run
