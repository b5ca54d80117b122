"""One writer per output prefix, and reports kept apart per output prefix."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time

import pytest
import yaml
from conftest import (
    LIVE_LOCK,
    LIVE_RUN,
    SNAKEMAKE,
    Workspace,
    kept_folder,
    snakemake_command,
    unwritable,
)
from rio_cogeo.cogeo import cog_validate

from etm.lock import LOCK_NAME, processes_of_run

pytestmark = pytest.mark.slow  # end-to-end runs on S3 or several runs each (make test-fast)


def test_the_same_config_from_another_directory_waits_for_the_run_writing_its_prefix(
    workspace, tmp_path_factory
):
    inputs = [str(workspace.root / prefix) for prefix in workspace.config["unmosaicked_inputs"]]
    workspace.config.update(enduser_cog_output=str(workspace.output), unmosaicked_inputs=inputs)
    config = yaml.safe_dump(workspace.config)
    (workspace.root / "test.yaml").write_text(config)
    other = tmp_path_factory.mktemp("elsewhere")
    (other / "test.yaml").write_text(config)
    first = subprocess.Popen(
        snakemake_command(cores=1),
        cwd=workspace.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (workspace.output / LOCK_NAME).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run(
        snakemake_command(cores=1),
        cwd=other,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 1
    errors = [line for line in second.stderr.splitlines() if line.startswith("etm error")]
    assert len(errors) == 1, second.stderr
    assert errors[0].startswith(
        f"etm error: output prefix {workspace.output} is being written by the run started "
    )
    assert f"(process {first.pid}, in {workspace.root})" in errors[0]
    assert errors[0].endswith(f"remove its lock: etm unlock {workspace.output}")
    _, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr
    assert workspace.published() == workspace.expected_cogs()
    for cog in workspace.published():
        assert cog_validate(str(workspace.output / cog), quiet=True)[0], cog
    assert not (workspace.output / LOCK_NAME).exists()
    assert not list((other / "logs").rglob("*.log"))  # no job ran there


def test_a_lock_left_by_another_machine_is_named_and_cleared_with_etm_unlock(workspace):
    workspace.output.mkdir()
    (workspace.output / LOCK_NAME).write_text(
        '{"run": "r", "host": "batch-head-7", "pid": 1, "directory": "/w", '
        '"started": "2026-11-29T10:00:00+00:00"}'
    )
    refused = workspace.snakemake()
    assert refused.returncode == 1
    assert "etm error: output prefix out is being written by the run started " in refused.stderr
    assert "on host batch-head-7" in refused.stderr
    assert workspace.published() == set()
    etm = [str(SNAKEMAKE.with_name("etm")), "unlock", "out"]
    unlocked = subprocess.run(etm, cwd=workspace.root, capture_output=True, text=True)
    assert unlocked.returncode == 0 and unlocked.stdout.startswith("removed the lock of out")
    assert not (workspace.output / LOCK_NAME).exists()


def test_two_configs_in_one_directory_keep_their_own_reports(workspace):
    first = workspace.snakemake("-n")
    assert first.returncode == 0, first.stderr
    written = (workspace.reports / "verifier.txt").read_text()
    other = Workspace(workspace.root)
    other.config = {**workspace.config, "enduser_cog_output": "out-2021/", "start_year": 2021}
    second = other.snakemake("-n")
    assert second.returncode == 0, second.stderr
    assert (workspace.reports / "verifier.txt").read_text() == written
    assert (
        "of 2021:"
        in (kept_folder(workspace.root, "reports", "out-2021") / "verifier.txt").read_text()
    )


@pytest.mark.parametrize("absolute", [False, True])
def test_prefixes_that_read_alike_keep_their_own_reports(workspace, absolute):
    """pub/x and pub_x, or /data/out and data/out: one folder of reports each, neither
    overwriting the other."""
    root = workspace.root
    if absolute:
        one = str(root.parent / "elsewhere" / "out")
        prefixes = (one, one.lstrip("/"))
    else:
        prefixes = ("pub/x", "pub_x")
    for prefix, year in zip(prefixes, (2020, 2021), strict=True):
        run = Workspace(root)
        run.config = {**workspace.config, "enduser_cog_output": prefix}
        run.config.update(start_year=year, end_year=year)
        result = run.snakemake("-n")
        assert result.returncode == 0, result.stderr
    folders = sorted((root / "reports").iterdir())
    assert len(folders) == 2, folders
    years = sorted(
        [year for year in ("2020", "2021") if f"of {year}:" in (f / "verifier.txt").read_text()]
        for f in folders
    )
    assert years == [["2020"], ["2021"]]


def test_a_config_of_ones_own_is_never_completed_from_the_teams(workspace):
    del workspace.config["enduser_cog_output"]
    result = workspace.snakemake("-n")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("etm error")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("etm error: config: missing key 'enduser_cog_output' (Prefix ")
    assert errors[0].endswith("); add it to your config file")
    assert not (workspace.root / "ws-enduser").exists()  # the team's output prefix
    assert not (workspace.root / "reports").exists()


def run_holding_the_lock(workspace: Workspace) -> subprocess.Popen:
    """A run of 2020's month, once it holds its output prefix's lock."""
    workspace.config["end_year"] = 2020
    workspace.write_config()
    run = subprocess.Popen(
        snakemake_command(cores=1), cwd=workspace.root, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (workspace.output / LOCK_NAME).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return run


def test_etm_unlock_refuses_the_lock_of_a_run_still_writing(workspace):
    first = run_holding_the_lock(workspace)
    etm = [str(SNAKEMAKE.with_name("etm")), "unlock", "out"]
    refused = subprocess.run(etm, cwd=workspace.root, capture_output=True, text=True)
    _, stderr = first.communicate(timeout=600)
    assert refused.returncode == 1
    assert refused.stderr.startswith("etm error: the lock of out is held by the run started ")
    assert f"which is running (see `ps -p {first.pid}" in refused.stderr
    assert first.returncode == 0, stderr
    assert workspace.published() == workspace.expected_cogs()


def test_a_run_whose_main_process_was_killed_holds_its_lock_while_its_jobs_write(workspace):
    workspace.config["end_year"] = 2020
    workspace.write_config()
    first = subprocess.Popen(snakemake_command(cores=1), cwd=workspace.root,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    lock, jobs, deadline = workspace.output / LOCK_NAME, [], time.monotonic() + 300
    while not jobs and time.monotonic() < deadline:
        time.sleep(0.01)
        with contextlib.suppress(OSError, ValueError):
            jobs = [p for p in processes_of_run(json.loads(lock.read_text())["run"])
                    if p != first.pid]  # fmt: skip
    assert jobs, "no job of the first run was seen"
    os.kill(jobs[0], signal.SIGSTOP)  # a job that writes on, as a slow one does
    first.kill()
    first.wait()
    try:
        assert workspace.snakemake("--unlock").returncode == 0  # Snakemake's own lock
        second = workspace.snakemake(timeout=300)
        etm = [str(SNAKEMAKE.with_name("etm")), "unlock", "out"]
        refused = subprocess.run(etm, cwd=workspace.root, capture_output=True, text=True)
    finally:
        os.kill(jobs[0], signal.SIGKILL)
    assert second.returncode == 1
    assert "is being written by the run started " in second.stderr, second.stderr
    assert f"(process {first.pid}, in {workspace.root})" in second.stderr
    assert refused.returncode == 1
    assert f"which is running (see `ps -p {jobs[0]}" in refused.stderr, refused.stderr
    time.sleep(0.5)  # the stopped job, killed, is gone: the lock is taken over
    third = workspace.snakemake("--rerun-incomplete", timeout=600)
    assert third.returncode == 0, third.stderr
    assert "took over the lock of out" in third.stderr
    assert workspace.published() == workspace.expected_cogs()


def test_a_run_removes_what_a_killed_run_left_and_says_so(workspace, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tmpdir")
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp / f"etm-{gone.pid}-x1y2z3").mkdir()  # a killed job's scratch folder
    (tmp / f"etm-{os.getpid()}-alive").mkdir()  # a job's of a live process: kept
    folder = workspace.output / "tiles" / "r50.0_tile6" / "etasw" / "2020"
    folder.mkdir(parents=True)
    (folder / ".etasw_202007.tif.0123456789ab.partial").write_bytes(b"half a COG")
    workspace.write_config()
    run = subprocess.run(
        snakemake_command(), cwd=workspace.root, capture_output=True, text=True,
        env={**os.environ, "TMPDIR": str(tmp)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert (
        f"etm: removed what a killed run left: 1 partial files under out, 1 scratch folders "
        f"under {tmp}"
    ) in run.stderr.splitlines(), run.stderr
    assert sorted(p.name for p in tmp.iterdir()) == [f"etm-{os.getpid()}-alive"]
    assert workspace.published() == workspace.expected_cogs()


@pytest.mark.parametrize("nested", ["inside", "around", "linked"])
def test_a_run_is_refused_while_a_live_run_writes_a_folder_inside_or_around_its_prefix(
    workspace, nested, tmp_path_factory
):
    # The other run's lock names a live process of this machine (this test's); its partial
    # file is a COG it is writing. A run of out/ removed it as a killed run's. "linked":
    # out is a link to a folder inside the other run's.
    other = {
        "inside": workspace.output / "sub", "around": workspace.root,
        "linked": workspace.root / "pubn",
    }[nested]  # fmt: skip
    if nested == "linked":
        (other / "sub").mkdir(parents=True)
        workspace.output.symlink_to(other / "sub")
    if nested == "around":  # the reports are kept apart from it (refused first otherwise)
        workspace.config["reports_dir"] = str(tmp_path_factory.mktemp("reports"))
    other.mkdir(parents=True, exist_ok=True)
    (other / LOCK_NAME).write_text(LIVE_LOCK)
    writing = other / "tiles" / "r50.0_tile6" / "etasw" / "2020"
    writing.mkdir(parents=True)
    (writing / ".etasw_202007.tif.0123456789ab.partial").write_bytes(b"half a COG")
    refused = workspace.snakemake()
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if line.startswith("etm error:")]
    assert errors == [
        f"etm error: output prefix out overlaps {other}, which is being written by {LIVE_RUN}; "
        "one run at a time writes a folder and the folders in it: wait for it, or, if that run "
        f"is gone, remove its lock: etm unlock {other}"
    ], refused.stderr
    assert (writing / ".etasw_202007.tif.0123456789ab.partial").exists()
    assert not (workspace.output / LOCK_NAME).exists()
    assert {path for path in workspace.published() if not path.startswith("sub/")} == set()


@pytest.mark.parametrize("kind", ["fifo", "dangling-link"])
def test_a_lock_that_is_not_a_file_is_one_line_for_the_run_and_for_etm_unlock(workspace, kind):
    # A FIFO: both waited forever for a writer. A dangling link: the run said another run
    # took the lock, and etm unlock that there was none.
    workspace.output.mkdir()
    lock = workspace.output / LOCK_NAME
    os.mkfifo(lock) if kind == "fifo" else lock.symlink_to(workspace.root / "nowhere")
    what = "not a regular file" if kind == "fifo" else "a symbolic link"
    line = (
        f"etm error: cannot read the lock out/{LOCK_NAME} ({what}): the output prefix must be "
        "a folder, and its lock a file; remove what is in the way"
    )
    refused = workspace.snakemake(timeout=120)
    assert refused.returncode == 1
    assert [e for e in refused.stderr.splitlines() if e.startswith("etm error:")] == [line]
    etm = [str(SNAKEMAKE.with_name("etm")), "unlock", "out"]
    unlocked = subprocess.run(etm, cwd=workspace.root, capture_output=True, text=True, timeout=60)
    assert (unlocked.returncode, unlocked.stderr) == (1, line + "\n")
    assert os.path.lexists(lock) and workspace.published() == set()


def test_etm_unlock_of_a_lock_it_cannot_remove_is_one_line(workspace):
    workspace.output.mkdir()
    (workspace.output / LOCK_NAME).write_text(
        '{"run": "r", "host": "batch-head-7", "pid": 1, "directory": "/w", '
        '"started": "2026-11-29T10:00:00+00:00"}'
    )
    etm = [str(SNAKEMAKE.with_name("etm")), "unlock", "out"]
    with unwritable(workspace.output):
        refused = subprocess.run(etm, cwd=workspace.root, capture_output=True, text=True)
    assert refused.returncode == 1
    assert refused.stderr.startswith("etm error: cannot remove the lock of out: [Errno "), (
        refused.stderr
    )
    assert refused.stderr.endswith(f"check that you may read and delete out/{LOCK_NAME}\n")
    assert len(refused.stderr.splitlines()) == 1
    assert (workspace.output / LOCK_NAME).exists()


def test_reports_inside_a_live_runs_output_prefix_are_refused(workspace):
    # They were written into the other run's prefix while it held its lock.
    other = workspace.root / "pubL"
    other.mkdir()
    (other / LOCK_NAME).write_text(LIVE_LOCK)
    workspace.config["reports_dir"] = "pubL/rep"
    refused = workspace.snakemake()
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if line.startswith("etm error:")]
    assert errors == [
        f"etm error: the reports_dir pubL/rep is inside the output prefix {other}, which is "
        f"being written by {LIVE_RUN}; keep it apart from every output prefix"
    ], refused.stderr
    assert sorted(p.name for p in other.iterdir()) == [LOCK_NAME]
    assert not (workspace.output / LOCK_NAME).exists() and workspace.published() == set()


@pytest.mark.parametrize("output", ["logs", "reports"])
def test_an_output_prefix_holding_the_runs_logs_or_reports_is_refused(workspace, output):
    # `logs` published the other prefixes' logs, and removed their partial files.
    workspace.config["enduser_cog_output"] = output
    refused = workspace.snakemake("-n")
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if line.startswith("etm error:")]
    kept = "the log folder logs" if output == "logs" else rf"the reports_dir reports/{output}-\w+"
    assert len(errors) == 1 and re.fullmatch(
        rf"etm error: config key 'enduser_cog_output': {output} overlaps {kept}; what is "
        "published is kept apart from reports and logs, choose another folder",
        errors[0],
    ), refused.stderr


def test_a_run_whose_lock_was_removed_while_it_wrote_says_so_at_its_end(workspace):
    first = run_holding_the_lock(workspace)
    etm = [str(SNAKEMAKE.with_name("etm")), "unlock", "--force", "out"]
    assert subprocess.run(etm, cwd=workspace.root, capture_output=True).returncode == 0
    _, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr
    assert (
        "etm warning: the lock of out was removed or replaced while this run wrote (etm unlock "
        "--force, or from another host): another run may have written there too"
    ) in stderr, stderr


@pytest.mark.parametrize("action", ["jobs", "cancel"])
def test_etm_batch_refuses_a_region_that_is_not_a_name_in_one_line(tmp_path, action):
    # botocore's own check lets a final newline through, into the endpoint's host name.
    etm = [str(SNAKEMAKE.with_name("etm")), "batch", action, "--run", "x", "--queue", "q"]
    result = subprocess.run(
        [*etm, "--region", "us-east-1\n"], cwd=tmp_path, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "etm error: 'us-east-1\\n' is not an AWS region's name (us-west-2, say)"
    ]
