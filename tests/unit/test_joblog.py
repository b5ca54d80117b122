"""Jobs side by side in one process keep their own logs; an etm error fails only its job."""

import logging
import threading

from etm.errors import ChipContentError
from etm.joblog import JobFailed, run_in_thread

log = logging.getLogger("etm.test")


def test_jobs_in_threads_log_to_their_own_files_and_an_etm_error_fails_only_its_job(
    tmp_path, capsys
):
    both_started = threading.Barrier(2)
    results = {}

    def step(name: str, fail: bool) -> None:
        both_started.wait()  # both jobs' handlers are in place while each logs
        log.info("working on %s", name)
        both_started.wait()
        if fail:
            raise ChipContentError(f"{name}.tif", "is int16")

    def job(name: str, fail: bool) -> None:
        results[name] = run_in_thread(str(tmp_path / f"{name}.log"), step, name=name, fail=fail)

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
