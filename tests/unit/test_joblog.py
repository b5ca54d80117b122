"""Jobs side by side in one process keep their own logs; an etm error fails only its job;
beyond THREAD_JOBS at once, a job runs in a process of its own."""

import errno
import logging
import os
import threading

from etm import joblog
from etm.errors import ChipContentError
from etm.joblog import THREAD_JOBS, JobFailed, logged_errors, run_step

log = logging.getLogger("etm.test")
both_started = threading.Barrier(2)


def step(name: str, fail: bool) -> None:
    both_started.wait()  # both jobs' logs are in place while each logs
    log.info("working on %s", name)
    both_started.wait()
    if fail:
        raise ChipContentError(f"{name}.tif", "is int16")


def test_jobs_in_threads_log_to_their_own_files_and_an_etm_error_fails_only_its_job(
    tmp_path, capsys
):
    results = {}

    def job(name: str, fail: bool) -> None:
        log_path = str(tmp_path / f"{name}.log")
        results[name] = run_step(log_path, "test_joblog:step", name=name, fail=fail)

    threads = [threading.Thread(target=job, args=(n, n == "b")) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results["a"] is None
    assert isinstance(results["b"], JobFailed)
    assert str(tmp_path / "b.log") in str(results["b"])
    a, b = ((tmp_path / f"{n}.log").read_text() for n in ("a", "b"))
    assert "working on a" in a and "working on b" not in a and "int16" not in a
    assert "working on b" in b and "working on a" not in b
    assert "chip b.tif: is int16" in b
    errors = [line for line in capsys.readouterr().err.splitlines() if line]
    assert errors == ["etm error: chip b.tif: is int16"]
    assert len(logging.getLogger("etm").handlers) == 1  # the jobs' one router, installed once


def test_with_every_thread_slot_taken_a_job_runs_in_a_process_of_its_own(tmp_path, capfd):
    for _ in range(THREAD_JOBS):
        joblog._THREAD_SLOTS.acquire()
    try:
        status = tmp_path / "status.txt"  # the process the step ran in, as it saw itself
        done = run_step(
            str(tmp_path / "ok.log"), "etm.files:copy_whole",
            source="/proc/self/status", destination=str(status),
        )  # fmt: skip
        failed = run_step(
            str(tmp_path / "bad.log"), "etm.config:check_placeholder",
            key="etm-batch-region", value="FILL-IN-region",
        )  # fmt: skip
    finally:
        for _ in range(THREAD_JOBS):
            joblog._THREAD_SLOTS.release()
    assert done is None
    assert f"\nPid:\t{os.getpid()}\n" not in status.read_text()
    assert "\nPid:\t" in status.read_text()
    assert isinstance(failed, JobFailed)
    errors = [line for line in capfd.readouterr().err.splitlines() if line]
    assert len(errors) == 1 and errors[0].startswith(
        "etm error: profile key 'etm-batch-region' is still the placeholder"
    ), errors
    assert "is still the placeholder" in (tmp_path / "bad.log").read_text()


def full_disk(path: str) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def test_a_full_disk_fails_its_job_in_one_line_naming_the_file(tmp_path, capsys):
    # The map page's write on a full disk was an OSError traceback.
    failed = run_step(str(tmp_path / "page.log"), "test_joblog:full_disk", path="out/index.html")
    assert isinstance(failed, JobFailed)
    errors = [line for line in capsys.readouterr().err.splitlines() if line]
    assert errors == [
        "etm error: out/index.html: cannot be written (No space left on device): free space "
        "on its disk, or make it writable, then run again"
    ]
    # The same line in the job's log, where a failed run on AWS Batch reads it.
    assert logged_errors((tmp_path / "page.log").read_text()) == [
        errors[0].removeprefix("etm error: ")
    ]


def full_disk_in_a_stream() -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a write to an open file


def test_a_full_disk_in_a_write_naming_no_file_names_the_job(tmp_path, capsys):
    log = str(tmp_path / "stac_catalog.log")
    assert isinstance(run_step(log, "test_joblog:full_disk_in_a_stream"), JobFailed)
    errors = [line for line in capsys.readouterr().err.splitlines() if line]
    assert errors == [
        f"etm error: a file of the job logging to {log}: cannot be written (No space left on "
        "device): free space on its disk, or make it writable, then run again"
    ]
