"""Unattended runs on a faulty S3: retries, failures that publish nothing, kill -9, disk full.

The workflow's clients reach the loopback S3 server through tests/faultproxy.py; the
tests check the buckets directly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import boto3
import numpy as np
import pytest
import rasterio
from botocore.exceptions import ClientError
from conftest import JULY, TILE5, TILE6, Workspace, rewrite_chip
from faultproxy import FAULTS, FaultProxy
from rio_cogeo.cogeo import cog_validate
from s3server import FAKE_CREDENTIALS, assert_no_credentials
from s3workspace import OUTPUT
from webhookserver import WebhookReceiver

from etm.lock import LOCK_NAME
from etm.provenance import LEDGER
from etm.s3 import client_config

pytestmark = pytest.mark.slow


@pytest.fixture
def reference(tmp_path_factory, pristine):
    """The workspace sample's COGs built from local files, without any fault."""
    root = tmp_path_factory.mktemp("reference")
    shutil.copytree(pristine / "sample", root / "sample")
    workspace = Workspace(root)
    assert workspace.snakemake().returncode == 0
    return workspace


#: A password in the endpoint URL, which no message or log may show.
ENDPOINT_PASSWORD = "etm-endpoint-pw-0123"


def proxied(s3ws, password: bool = False, **faults) -> FaultProxy:
    proxy = FaultProxy(s3ws.server.endpoint, **faults)
    userinfo = f"etm:{ENDPOINT_PASSWORD}@" if password else ""
    s3ws.endpoint = proxy.endpoint.replace("://", f"://{userinfo}")
    return proxy


def test_every_fifth_request_failing_still_publishes_exactly_the_correct_cogs(s3ws, reference):
    proxy = proxied(s3ws, every=5)
    try:
        result, _ = s3ws.snakemake()
    finally:
        proxy.stop()
    assert result.returncode == 0, result.stderr
    assert {fault for fault, *_ in proxy.faults} == set(FAULTS)
    assert proxy.overflow == 0
    assert s3ws.published() == s3ws.expected_cogs()
    for cog in s3ws.published():
        path = s3ws.download("ws-enduser", f"{OUTPUT}/{cog}")
        assert cog_validate(path, quiet=True)[0], cog
        with rasterio.open(path) as got, rasterio.open(reference.output / cog) as want:
            assert got.transform == want.transform
            np.testing.assert_array_equal(got.read(1), want.read(1))
    assert_no_credentials(*s3ws.logs(), result.stdout, result.stderr)


def test_throttled_checks_of_missing_objects_are_retried_for_the_whole_run(s3ws):
    # Snakemake checks missing outputs and logs with HEAD requests answering 404. botocore's
    # "standard" retry mode stopped retrying after 70 of them (its retry quota is refilled
    # by 2xx answers only): etm's clients must retry every one.
    proxy = proxied(s3ws, every=3, faults=("slowdown",))
    try:
        client = boto3.client(
            "s3",
            endpoint_url=proxy.endpoint,
            region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=client_config(),
        )
        answers = []
        for _ in range(200):
            try:
                client.head_object(Bucket="ws-enduser", Key="not/published/yet.tif")
            except ClientError as error:
                answers.append(error.response["Error"]["Code"])
    finally:
        proxy.stop()
    assert len(proxy.faults) >= 90  # every 3rd of the 200 HEADs and their retries
    assert answers == ["404"] * 200


def test_every_request_failing_stops_with_one_line_and_publishes_nothing(s3ws):
    s3ws.environment["AWS_MAX_ATTEMPTS"] = "3"  # the standard variable; keeps the test short
    proxy = proxied(s3ws, password=True, every=1, faults=("slowdown", "internal", "reset"))
    try:
        result, requests = s3ws.snakemake()
    finally:
        proxy.stop()
    assert result.returncode == 1
    assert ENDPOINT_PASSWORD not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("etm error:")]
    assert lines == [
        f"etm error: cannot list s3://{s3ws.prefix(TILE5).rstrip('/')}/: "
        + lines[0].split(": ", 2)[2]
    ], result.stderr
    assert "check the network, AWS_ENDPOINT_URL and the credentials" in lines[0]
    # Nothing got through: 3 attempts in all (AWS_MAX_ATTEMPTS counts the first), each
    # of them the first listing.
    assert proxy.forwarded == 0 and len(proxy.faults) == 3, proxy.faults
    assert {path.split("&")[1] for _, _, path in proxy.faults} == {
        "prefix=USA%2FRun08_18_2021%2Frun_r50.0_tile5%2Fr50.0_tile5%2F"
    }
    assert s3ws.published(("",)) == set()


def test_every_request_failing_after_the_lock_stops_the_run_and_publishes_nothing(s3ws):
    s3ws.environment["AWS_MAX_ATTEMPTS"] = "2"
    # Dry-run first, to count the requests Snakemake needs to start: the listings.
    proxy = proxied(s3ws)
    try:
        s3ws.snakemake("-n")
        start = proxy.forwarded
    finally:
        proxy.stop()
    # Past the listings and the output prefix's lock (one PUT), every request fails, with
    # an error that quotes the endpoint URL and its password.
    proxy = proxied(s3ws, password=True, every=1, after=start + 1, faults=("reset",))
    try:
        result, _ = s3ws.snakemake("--retries", "0")
    finally:
        proxy.stop()
    assert result.returncode != 0
    for text in (result.stdout, result.stderr, *s3ws.logs()):
        assert ENDPOINT_PASSWORD not in text
    assert proxy.forwarded == start + 1
    # The first request after the lock is its check for other runs' prefixes around or in
    # its own: it fails, and so does removing the lock; the run says how to remove it.
    errors = [line for line in result.stderr.splitlines() if line.startswith("etm error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(
        f"etm error: cannot lock the output prefix s3://ws-enduser/{OUTPUT}"
    )
    assert errors[0].endswith(f"remove it with: etm unlock s3://ws-enduser/{OUTPUT}")
    assert "Traceback" not in result.stdout + result.stderr
    assert s3ws.published(("",)) == {LOCK_NAME}


def is_chip_get(method: str, path: str) -> bool:
    return method == "GET" and path.startswith("/ws-out/") and "list-type" not in path


def is_cog_put(method: str, path: str) -> bool:
    return method == "PUT" and path.startswith("/ws-enduser/") and path.endswith(".tif")


def cog_puts(requests) -> int:
    return sum(is_cog_put(method, path) for method, path in requests)


def partial_cogs(root) -> list:
    """COGs being written: hidden partial files in Snakemake's local copy of the storage."""
    return list((root / ".snakemake" / "storage").rglob(".*.partial"))


def test_the_storage_failing_once_jobs_run_is_one_line_and_a_notification(s3ws):
    # Snakemake then ends without its onerror: etm says so, and notifies, at the exit.
    s3ws.environment["AWS_MAX_ATTEMPTS"] = "1"
    webhook = WebhookReceiver()
    s3ws.config["notify"] = {"webhook_url": webhook.url}
    proxy = proxied(s3ws)
    proxy.hold(is_chip_get)  # the first chip download: the lock is taken, jobs start
    command, environment = s3ws.command()
    run = subprocess.Popen(command, cwd=s3ws.root, env=environment, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proxy.held.wait(300), "no chip was downloaded"
        proxy.after, proxy.every, proxy.cycle = len(proxy.seen), 1, ("internal",)
        proxy.release(drop=True)  # S3 stops answering
        _, stderr = run.communicate(timeout=600)
    finally:
        proxy.stop()
        webhook.stop()
    assert run.returncode == 1
    errors = [line for line in stderr.splitlines() if line.startswith("etm error")]
    assert errors[-1] == (
        "etm error: the run stopped before its end, on Snakemake's error above (the storage not "
        "answering, an interrupt); run again once it is fixed: what was published is kept"
    ), stderr
    [notified] = webhook.bodies
    assert notified["status"] == "error"
    assert "etm: notifications of how the run ended: 1 sent, 0 failed" in stderr


@pytest.mark.parametrize(
    "stop, said",
    [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "an interrupt (Ctrl-C)")],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_stop_while_a_cog_uploads_ends_the_run_in_one_line(s3ws, stop, said):
    # Snakemake's SIGTERM handler took the lock its main thread held while uploading: a hang.
    proxy = proxied(s3ws)
    proxy.hold(is_cog_put)
    command, environment = s3ws.command()
    run = subprocess.Popen(command, cwd=s3ws.root, env=environment, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proxy.held.wait(300), "no COG was uploaded"
        run.send_signal(stop)
        time.sleep(1)  # the handler runs while the upload waits
        proxy.release()
        _, stderr = run.communicate(timeout=300)
    finally:
        run.kill()
        proxy.stop()
    assert run.returncode != 0
    errors = [line for line in stderr.splitlines() if line.startswith("etm error")]
    assert errors == [
        f"etm error: the run was stopped by {said} before its end: the months whose jobs had "
        "not ended are not published (on S3, those published before keep their last version); "
        "run again to build them"
    ], stderr
    assert "Traceback" not in stderr
    assert not [key for key in s3ws.objects("ws-enduser") if key.endswith(LOCK_NAME)]


def test_an_interrupt_while_the_ledger_is_written_is_one_line_and_frees_the_lock(s3ws):
    proxy = proxied(s3ws)
    proxy.hold(lambda method, path: method == "PUT" and LEDGER in path)
    command, environment = s3ws.command()
    # A whole run's lines: in a file, as a pipe left unread until the end would fill up.
    with open(s3ws.root / "stderr.txt", "w") as printed:
        run = subprocess.Popen(command, cwd=s3ws.root, env=environment,
                               stdout=subprocess.DEVNULL, stderr=printed)  # fmt: skip
    try:
        assert proxy.held.wait(600), "the ledger was not written"
        run.send_signal(signal.SIGINT)
        time.sleep(1)
        proxy.release()
        run.wait(timeout=300)
    finally:
        run.kill()
        proxy.stop()
    stderr = (s3ws.root / "stderr.txt").read_text()
    assert "etm warning: interrupted (Ctrl-C) as the run ended: what it published stands; " in (
        stderr
    ), stderr
    assert "Traceback" not in stderr
    assert not [key for key in s3ws.objects("ws-enduser") if key.endswith(LOCK_NAME)]


@pytest.mark.parametrize("point", ["download", "cog_write", "upload"])
def test_kill_9_then_rerun_incomplete_finishes_only_the_interrupted_months(s3ws, point):
    proxy = proxied(s3ws)
    if point == "download":  # a chip download, once a first month is published
        proxy.hold(lambda m, p: is_chip_get(m, p) and cog_puts(proxy.seen) >= 1)
    elif point == "upload":  # the third COG upload
        proxy.hold(lambda m, p: is_cog_put(m, p) and cog_puts(proxy.seen) >= 3)
    chips = s3ws.objects("ws-out")
    command, environment = s3ws.command()
    run = subprocess.Popen(
        command, cwd=s3ws.root, env=environment, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and run.poll() is None:
            if proxy.held.is_set() or (
                point == "cog_write" and cog_puts(proxy.seen) >= 1 and partial_cogs(s3ws.root)
            ):
                break
            time.sleep(0.01)
        assert run.poll() is None, "the run ended before the kill point"
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    finally:
        proxy.release(drop=True)
        proxy.stop()
    s3ws.endpoint = s3ws.server.endpoint
    assert s3ws.objects("ws-out") == chips

    survivors = s3ws.published()
    assert 1 <= len(survivors) < len(s3ws.expected_cogs())
    assert not [key for key in s3ws.objects("ws-enduser") if "partial" in key]
    for cog in survivors:
        assert cog_validate(s3ws.download("ws-enduser", f"{OUTPUT}/{cog}"), quiet=True)[0], cog

    assert s3ws.snakemake("--unlock")[0].returncode == 0
    resumed, _ = s3ws.snakemake()  # profiles/ec2 sets rerun-incomplete
    assert resumed.returncode == 0, resumed.stderr
    assert s3ws.published() == s3ws.expected_cogs()
    for cog in s3ws.published():
        assert cog_validate(s3ws.download("ws-enduser", f"{OUTPUT}/{cog}"), quiet=True)[0], cog
    # Two cores: at most two months were in flight. Only they may be published again.
    redone = {
        path.split("/", 2)[2][len(OUTPUT) + 1 :]
        for method, path, _query in s3ws.server.requests
        if method == "PUT" and path.endswith(".tif")
    }
    assert len(redone & survivors) <= 2, redone & survivors


@pytest.fixture
def small_disk(workspace):
    """A 100 KiB tmpfs in the workspace: too small for one tile COG of the sample."""
    disk = workspace.root / "disk"
    disk.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs", str(disk)],
        capture_output=True, text=True,
    )  # fmt: skip
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def test_disk_full_while_writing_a_cog_fails_with_one_line_and_publishes_nothing(
    workspace, small_disk
):
    workspace.output = small_disk / "etm"
    workspace.config["enduser_cog_output"] = "disk/etm/"
    full = workspace.snakemake()
    assert full.returncode != 0
    lines = [line for line in full.stderr.splitlines() if line.startswith("etm error:")]
    assert lines, full.stderr
    assert re.fullmatch(
        r"etm error: cannot write the COG disk/etm/tiles/\S+\.tif: the disk of disk/etm/tiles/"
        r"\S+ ran out of space \(0\.\d MiB free after the failed write, sources \d+\.\d MiB\); "
        r"free space there, then run again\. Nothing was published",
        lines[0],
    ), lines[0]
    assert workspace.published() == set()  # not even a hidden partial COG

    subprocess.run(["umount", str(small_disk)], check=True)  # space again
    again = workspace.snakemake()
    assert again.returncode == 0, again.stderr
    assert workspace.published() == workspace.expected_cogs()
    for cog in workspace.published():
        assert cog_validate(str(workspace.output / cog), quiet=True)[0], cog


def test_a_narrower_grant_than_the_readmes_is_one_line_naming_the_object_and_permission(s3ws):
    # A role that may read and write the COGs but not list their folders: the storage
    # plugin asks S3 about each COG itself, and S3 answers 403, not 404, to a HEAD of a COG
    # that does not exist yet.
    def cog_head_or_folder(method: str, path: str) -> bool:
        listing = method == "GET" and path.startswith("/ws-enduser?") and "delimiter" in path
        return listing or (
            method == "HEAD" and path.startswith("/ws-enduser/") and path.endswith(".tif")
        )

    proxy = proxied(s3ws, deny=cog_head_or_folder)
    try:
        result, _ = s3ws.snakemake()
    finally:
        proxy.stop()
    assert result.returncode != 0
    denied = [line for line in result.stderr.splitlines() if line.startswith("etm error: S3")]
    assert len(set(denied)) == 1, result.stderr
    assert denied[0].startswith("etm error: S3 refused access (403) to s3://ws-enduser/USA/TBD/")
    assert "needs s3:GetObject on it and s3:ListBucket on bucket ws-enduser" in denied[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("refused", ["tif", "json"])
def test_an_upload_refused_builds_the_month_again_at_the_next_run(s3ws, refused):
    s3ws.config.update(end_year=2020)
    first, _ = s3ws.snakemake()
    assert first.returncode == 0, first.stderr
    month = f"{OUTPUT}/tiles/{TILE6}/etasw/2020/etasw_202007"
    before = s3ws.objects("ws-enduser", month)
    key = s3ws.chip_key(TILE6, "chip43.4N-102.8E", "etasw", 2020, JULY)
    chip = s3ws.download("ws-out", key)
    rewrite_chip(Path(chip), scale=1.01)
    s3ws.s3.upload_file(chip, "ws-out", key)
    denied = ("PUT", f"/ws-enduser/{month}.{refused}")
    proxy = proxied(s3ws, deny=lambda method, path: (method, path) == denied)
    try:
        failed, _ = s3ws.snakemake()
    finally:
        proxy.stop()
    assert failed.returncode != 0
    assert f"etm error: S3 refused access (403) to s3://ws-enduser/{month}.{refused}" in (
        failed.stderr
    )
    # The job's record of what it built is stored all the same (Snakemake stores a failed
    # job's logs): the month's COG, old or new, is removed, so that it is built again.
    assert f"{month}.tif" not in s3ws.objects("ws-enduser", month)
    s3ws.endpoint = s3ws.server.endpoint
    rebuilt, _ = s3ws.snakemake()
    assert rebuilt.returncode == 0, rebuilt.stderr
    after = s3ws.objects("ws-enduser", month)
    assert after[f"{month}.tif"] != before[f"{month}.tif"]
    item = json.loads(s3ws.s3.get_object(Bucket="ws-enduser", Key=f"{month}.json")["Body"].read())
    cog = s3ws.s3.head_object(Bucket="ws-enduser", Key=f"{month}.tif")
    assert item["assets"]["data"]["file:size"] == cog["ContentLength"]
