"""`snakemake --profile profiles/aws` as the team runs it: every job in the real image.

The job image is built from the Dockerfile with podman (tests/image.py). The Batch API is
a stand-in on loopback (tests/batchserver.py) that runs each registered job's command in
that image, with only the job definition's environment and a job role's credentials,
fetched from the stand-in as from the ECS agent; S3 is moto's server on loopback. Three
tiles, annual COGs; the same config run locally gives the pixels to compare with.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from batchserver import BatchServer
from conftest import REPO, SNAKEMAKE, rewrite_chip, snakemake_command
from image import environment as podman_environment
from image import job_image, podman
from rio_cogeo.cogeo import cog_validate
from s3server import FAKE_CREDENTIALS, S3Server, assert_no_credentials
from s3workspace import BATCH, WORK_AREA

from etm.config import output_key
from etm.sample import tile_prefix, write_sample

#: The job role's temporary credentials: only containers get them, and every job needs them.
JOB_ROLE = {
    "AccessKeyId": "ASIAETMTESTJOBROLE00",
    "SecretAccessKey": "etm-test-job-role-secret-0123456789abcdef",
    "Token": "etm-test-job-role-session-token",
}

pytestmark = pytest.mark.slow

TILES = ("r50.0_tile5", "r50.0_tile6", "r50.0_tile7")
YEAR = 2020
OUTPUT = "USA/TBD"
#: What the workflow needs of the repository: the team runs it from a checkout.
WORKFLOW = (".gitignore", "Snakefile", "rules", "scripts", "config", "envs", "profiles")
#: 3 tile-years (12 months and the year each), 1 region-year, 3 tile baselines.
CONTAINERS = 7


def config(prefixes: list[str], output: str) -> dict:
    return {
        "products": ["etasw"], "start_year": YEAR, "end_year": YEAR,
        "unmosaicked_inputs": prefixes, "enduser_cog_output": output, "annual": True,
    }  # fmt: skip


def checkout(folder: Path, settings: dict) -> Path:
    """A git checkout of the workflow with the config inside it, as the team runs it:
    Snakemake sends jobs the checkout's files (git ls-files) and the config files. The
    map page's built script (`make web`, git-ignored) is beside them."""
    folder.mkdir(parents=True)
    for name in WORKFLOW:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / name)
    shutil.copytree(REPO / "web", folder / "web", ignore=shutil.ignore_patterns("node_modules"))
    git = ["git", "-c", "user.name=etm", "-c", "user.email=etm@localhost"]
    subprocess.run([*git, "init", "-q"], cwd=folder, check=True)
    subprocess.run([*git, "add", "."], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-qm", "checkout"], cwd=folder, check=True)
    (folder / "test.yaml").write_text(yaml.safe_dump(settings))
    return folder


def snakemake(
    folder: Path, *args: str, profile: str | None = None, cores: int = 2, env=None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        snakemake_command(*args, cores=cores, profile=profile, workflow=folder),
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )


@dataclass
class BatchRun:
    folder: Path
    local: Path
    server: S3Server
    batch: BatchServer
    environment: dict[str, str]
    profile: list[str]

    def snakemake(self, *args: str, configfile: str = "test.yaml") -> subprocess.CompletedProcess:
        return subprocess.run(
            snakemake_command(*self.profile, *args, cores=220, profile="aws",
                              configfile=configfile, workflow=self.folder),
            cwd=self.folder, env=self.environment, capture_output=True, text=True, timeout=1800,
        )  # fmt: skip

    def objects(self, bucket: str, prefix: str = "") -> dict[str, str]:
        s3 = self.server.client()
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", ())}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """The sample on loopback S3 and a Batch stand-in; the same config run locally."""
    image = job_image()
    root = tmp_path_factory.mktemp("batch")
    sample = root / "sample"
    write_sample(str(sample), products=("etasw",), years=(YEAR,), tiles=TILES)
    local = root / "local"
    prefixes = [os.path.relpath(tile_prefix(str(sample), tile), local) for tile in TILES]
    local = checkout(local, config(prefixes, "out"))
    reference = snakemake(local)
    assert reference.returncode == 0, reference.stderr

    server = S3Server()
    for bucket in ("ws-out", "ws-enduser", "ws-work"):
        server.client().create_bucket(Bucket=bucket)
    server.upload_tree(sample / "ws-out", "ws-out")
    logs = root / "containers"
    logs.mkdir()
    region = FAKE_CREDENTIALS["AWS_DEFAULT_REGION"]
    stand_in = BatchServer(["podman"], podman_environment(), JOB_ROLE, region, logs)
    prefixes = [f"ws-out/USA/Run08_18_2021/run_{tile}/{tile}/" for tile in TILES]
    folder = checkout(root / "checkout", config(prefixes, f"ws-enduser/{OUTPUT}"))
    environment = {
        **podman_environment(), **server.environment, "AWS_MAX_ATTEMPTS": "7",
        "AWS_ENDPOINT_URL_BATCH": stand_in.endpoint,
    }  # fmt: skip
    profile = [
        *WORK_AREA, *BATCH,
        "--etm-batch-image", image, "--seconds-between-status-checks", "2",
    ]  # fmt: skip
    yield BatchRun(folder, local, server, stand_in, environment, profile)
    stand_in.stop()
    server.stop()


def test_every_job_runs_in_the_image_and_publishes_the_local_runs_pixels(batch):
    dry = batch.snakemake("-n")
    assert dry.returncode == 0, dry.stderr
    # A tile's months 4 at once, then its year; the region's 13 periods 4 at once; a
    # baseline per tile: as they are submitted (below).
    announced = (
        f"etm: {CONTAINERS} containers to submit (4 of 4 vCPUs and 4,096 MiB, 3 of 1 vCPU and "
        "1,024 MiB), each running as many of its jobs at once as it has vCPUs"
    )
    assert announced in dry.stderr, dry.stderr
    # Groups of one's own on the command line add to the workflow's, which stay whole.
    given = batch.snakemake("-n", "--group-components", "other=2")
    assert f"etm: {CONTAINERS} containers to submit (" in given.stderr, given.stderr
    chips = batch.objects("ws-out")
    result = batch.snakemake()
    assert result.returncode == 0, result.stderr + "".join(
        path.read_text() for path in sorted(batch.batch.logs.glob("*.log"))
    )
    assert batch.batch.refused == []
    assert batch.batch.exit_codes() == [0] * CONTAINERS
    vcpus = sorted(
        int(r["value"])
        for definition in batch.batch.definitions.values()
        for r in definition["containerProperties"]["resourceRequirements"]
        if r["type"] == "VCPU"
    )
    assert vcpus == [1, 1, 1, 4, 4, 4, 4]
    for definition in batch.batch.definitions.values():
        environment = {
            e["name"]: e["value"] for e in definition["containerProperties"]["environment"]
        }
        assert environment["AWS_ENDPOINT_URL"] == batch.server.endpoint
        assert environment["AWS_MAX_ATTEMPTS"] == "7"
        assert "AWS_SECRET_ACCESS_KEY" not in environment and "AWS_ACCESS_KEY_ID" not in environment
        # A group's mosaics too run in its Snakemake's threads, not each in another Snakemake,
        # and its other months go on when one fails.
        command = " ".join(definition["containerProperties"]["command"])
        assert "--force-use-threads" in command and "--keep-going" in command
    published = {
        key.removeprefix(f"{OUTPUT}/") for key in batch.objects("ws-enduser", f"{OUTPUT}/")
    }
    expected = {
        str(path.relative_to(batch.local / "out"))
        for path in (batch.local / "out").rglob("*")
        if path.is_file()
    }
    assert published == expected
    for name in sorted(p for p in expected if p.endswith(".tif")):
        path = batch.folder / "downloaded" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        batch.server.client().download_file("ws-enduser", f"{OUTPUT}/{name}", str(path))
        assert cog_validate(str(path), quiet=True)[0], name
        with rasterio.open(path) as cog, rasterio.open(batch.local / "out" / name) as reference:
            assert cog.transform == reference.transform
            np.testing.assert_array_equal(cog.read(1), reference.read(1))
    assert batch.objects("ws-out") == chips
    # The region jobs, in their containers, kept their periods' Items for the catalog.
    logs = f"etm/logs/{output_key(f'ws-enduser/{OUTPUT}', local=False)}"
    catalog_log = batch.server.client().get_object(Bucket="ws-work", Key=f"{logs}/stac_catalog.log")
    items = sum(
        name.startswith(("tiles/", "mosaic/")) and name.endswith(".json") for name in published
    )
    assert (
        f"{items} Items: 0 kept by the last catalog, {items} by region jobs"
        in catalog_log["Body"].read().decode()
    )
    assert batch.batch.credential_reads >= CONTAINERS
    container_logs = [p.read_text() for p in batch.batch.logs.glob("*.log")]
    assert_no_credentials(*container_logs)
    for secret in (JOB_ROLE["SecretAccessKey"], JOB_ROLE["Token"]):
        assert not any(secret in text for text in container_logs)


def test_a_job_failing_in_its_container_is_resubmitted_and_reported_with_its_month(batch):
    s3 = batch.server.client()
    chips = "USA/Run08_18_2021/run_r50.0_tile6/r50.0_tile6/chip43.4N-102.8E/2020"
    key = f"{chips}/etasw_202007.tif"
    data = s3.get_object(Bucket="ws-out", Key=key)["Body"].read()
    s3.put_object(Bucket="ws-out", Key=key, Body=data[: len(data) // 2])  # cut short
    # August's chip rewritten too: the same container rebuilds that month.
    august = batch.folder / "etasw_202008.tif"
    s3.download_file("ws-out", f"{chips}/etasw_202008.tif", str(august))
    rewrite_chip(august, scale=1.01)
    s3.upload_file(str(august), "ws-out", f"{chips}/etasw_202008.tif")
    published = batch.objects("ws-enduser", f"{OUTPUT}/")
    before = len(batch.batch.jobs)
    result = batch.snakemake()
    assert result.returncode == 1
    # July's COG and Item as they were; August's as its container rebuilt them, though the
    # container failed: the main process removes neither (etm.s3.replace_only).
    after = batch.objects("ws-enduser", f"{OUTPUT}/")
    tile6 = f"{OUTPUT}/tiles/r50.0_tile6/etasw/2020/etasw_2020"
    assert set(after) == set(published)
    for suffix in ("tif", "json"):
        assert after[f"{tile6}07.{suffix}"] == published[f"{tile6}07.{suffix}"]
        assert after[f"{tile6}08.{suffix}"] != published[f"{tile6}08.{suffix}"]
    attempts = list(batch.batch.jobs.values())[before:]
    # A refused chip fails its container once: neither Snakemake nor Batch starts it again.
    assert [job.exit_code for job in attempts] == [1]
    assert [len(job.attempts) for job in attempts] == [1]
    assert "Trying to restart job" not in result.stderr
    assert "Error in rule mosaic_tile" in result.stderr
    assert "tiles/r50.0_tile6/etasw/2020/etasw_202007.tif" in result.stderr
    # Its line, said in its container's log, is said at the end of the run too.
    said = [line for line in result.stderr.splitlines() if line.startswith("etm error: chip")]
    assert len(said) == 1, result.stderr
    assert said[0].startswith(f"etm error: chip s3://ws-out/{key}: cannot be read in full")
    refusals = [line for job in attempts for attempt in job.attempts
                for line in attempt.log.read_text().splitlines()
                if line.startswith("etm error:")]  # fmt: skip
    assert refusals and all(
        line.startswith(f"etm error: chip s3://ws-out/{key}: cannot be read in full")
        for line in refusals
    ), refusals


def small(batch, name: str) -> str:
    """A config of tile7's July only, to its own output prefix: a tile-month, its region
    month and the tile's baseline, three containers."""
    prefix = "ws-out/USA/Run08_18_2021/run_r50.0_tile7/r50.0_tile7/"
    settings = {**config([prefix], f"ws-enduser/USA/{name}/"), "months": [7], "annual": False}
    (batch.folder / f"{name}.yaml").write_text(yaml.safe_dump(settings))
    return f"{name}.yaml"


def start(batch, configfile: str, *args: str) -> subprocess.Popen:
    command = snakemake_command(*batch.profile, *args, cores=220, profile="aws",
                                configfile=configfile, workflow=batch.folder)  # fmt: skip
    return subprocess.Popen(command, cwd=batch.folder, env=batch.environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def running(
    batch, before: int, count: int = 1, timeout: float = 300, status: str = "RUNNING"
) -> list:
    """Waits until ``count`` of the jobs submitted after the first ``before`` are in
    ``status``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = list(batch.batch.jobs.values())[before:]
        if sum(job.status == status for job in jobs) >= count:
            return jobs
        time.sleep(0.2)
    raise AssertionError(f"no job {status}")


def test_containers_have_no_privilege_and_run_as_the_images_user(batch):
    result = batch.snakemake(configfile=small(batch, "plain"))
    assert result.returncode == 0, result.stderr
    for definition in batch.batch.definitions.values():
        assert not definition["containerProperties"].get("privileged")
        assert definition["retryStrategy"]["evaluateOnExit"][0]["onStatusReason"] == "Host EC2*"
    assert not any("--privileged" in attempt.args for job in batch.batch.jobs.values()
                   for attempt in job.attempts)  # fmt: skip
    image = batch.profile[batch.profile.index("--etm-batch-image") + 1]
    user = podman("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    assert user == "etm"


def test_a_lost_spot_instance_is_retried_by_batch_not_by_snakemake(batch):
    before = len(batch.batch.jobs)
    reclaim = batch.batch.reclaim("etm-*-tile_r50-0_tile7_*", attempt=1, after=1.0)
    result = batch.snakemake(configfile=small(batch, "spot"))
    assert result.returncode == 0, result.stderr
    assert "Trying to restart job" not in result.stderr
    job = reclaim.job
    assert [attempt.exit_code for attempt in job.attempts] == [None, 0]
    assert job.attempts[0].status_reason.startswith("Host EC2 (instance i-")
    assert all(job.status == "SUCCEEDED" for job in list(batch.batch.jobs.values())[before:])


def test_a_queue_that_starts_nothing_is_said_in_one_line(batch):
    batch.batch.hold()
    run = start(batch, small(batch, "stuck"), "--etm-batch-runnable-timeout", "5")
    try:
        time.sleep(20)
    finally:
        batch.batch.release()
    _, stderr = run.communicate(timeout=900)
    assert run.returncode == 0, stderr
    lines = [line for line in stderr.splitlines() if "wait to start (RUNNABLE)" in line]
    assert len(lines) == 1 and lines[0].startswith("etm warning: "), stderr
    assert "on queue arn:aws:batch:us-east-1:123456789012:job-queue/etm" in lines[0]


def test_sigterm_ends_the_runs_containers(batch):
    before = len(batch.batch.jobs)
    run = start(batch, small(batch, "sigterm"))
    jobs = running(batch, before)
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=300)
    assert run.returncode != 0
    for job in jobs:
        batch.batch.wait(job.id)
    assert all(job.status in ("SUCCEEDED", "FAILED") for job in jobs)
    assert any(job.status_reason == "terminated by snakemake" for job in jobs), stderr


def test_after_a_kill_9_the_next_run_waits_for_the_old_containers_to_be_cancelled(batch):
    configfile = small(batch, "killed")
    before = len(batch.batch.jobs)
    # Its containers wait for capacity, so that none ends on its own while the test runs.
    batch.batch.hold()
    try:
        run = start(batch, configfile)
        running(batch, before, status="RUNNABLE")
        run.kill()
        run.communicate()
        assert batch.snakemake("--unlock", configfile=configfile).returncode == 0
        refused = batch.snakemake(configfile=configfile)
    finally:
        batch.batch.release()
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if line.startswith("etm error")]
    assert len(errors) == 1 and "of its AWS Batch jobs have not ended" in errors[0], refused.stderr
    assert "end them with `etm batch cancel --run " in errors[0]
    etm = [str(SNAKEMAKE.with_name("etm")), "batch", "cancel", "s3://ws-enduser/USA/killed"]
    cancelled = subprocess.run(etm, env=batch.environment, capture_output=True, text=True)
    assert cancelled.returncode == 0 and cancelled.stdout.startswith("ended "), cancelled.stderr
    for job in list(batch.batch.jobs.values())[before:]:
        batch.batch.wait(job.id)
    again = batch.snakemake(configfile=configfile)
    assert again.returncode == 0, again.stderr
    assert "took over the lock of s3://ws-enduser/USA/killed" in again.stderr
