"""A chip gone or refused between the run's listing and its read, on S3: one line naming it,
and only its month is not built. Through the real snakemake CLI, the workflow's clients
reaching the loopback S3 server through tests/faultproxy.py."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import quote

import pytest
from conftest import JULY, REPO, TILE5, TILE6, assert_chip_in_cog, rewrite_chip
from faultproxy import FaultProxy
from s3workspace import OUTPUT

pytestmark = pytest.mark.slow

#: A chip of tile6 whose July 2020 etasw file is also one its tile's baseline reads.
CHIP = (TILE6, "chip43.4N-102.8E", "etasw", 2020, JULY)


def run_with(s3ws, year: int, **faults):
    """A run of etasw in one year, its clients' requests for the chip's file answered by the
    proxy's ``faults`` (``gone`` or ``deny``)."""
    key = "/ws-out/" + s3ws.chip_key(*CHIP)
    matches = {name: (lambda method, path: path.split("?")[0] == key) for name in faults}
    proxy = FaultProxy(s3ws.server.endpoint, **matches)
    s3ws.endpoint = proxy.endpoint
    s3ws.config.update(products=["etasw"], start_year=year, end_year=year)
    try:
        result, _ = s3ws.snakemake()
    finally:
        proxy.stop()
    return result, f"s3://ws-out/{s3ws.chip_key(*CHIP)}"


def run_changing_inputs(s3ws, on_request) -> subprocess.CompletedProcess:
    """A run whose clients' requests go through a proxy that first calls
    ``on_request(method, path)``, which may change the input bucket on the server itself."""
    proxy = FaultProxy(s3ws.server.endpoint, gone=on_request)
    s3ws.endpoint = proxy.endpoint
    command, environment = s3ws.command()
    try:
        return subprocess.run(
            command, cwd=s3ws.root, env=environment, capture_output=True, text=True, timeout=600
        )
    finally:
        proxy.stop()
        s3ws.endpoint = s3ws.server.endpoint


def etm_errors(result) -> set[str]:
    return {line for line in result.stderr.splitlines() if line.startswith("etm error:")}


def assert_only_its_month_failed(s3ws, result, line: str) -> None:
    """The run failed with this one etm line, no retrieval error nor traceback, and only the
    chip's own month (tile6's July 2020) was not built."""
    assert result.returncode == 1
    assert etm_errors(result) == {line}, result.stderr
    assert "Failed to retrieve" not in result.stderr and "Traceback" not in result.stderr
    assert s3ws.published() == {"tiles/r50.0_tile5/etasw/2020/etasw_202007.tif"}


def baseline_log(s3ws) -> str:
    (log,) = [text for key, text in s3ws.job_logs().items() if f"chip_baseline/{TILE6}" in key]
    return log


def test_a_chip_deleted_after_the_listing_is_one_line_and_only_its_month_is_not_built(s3ws):
    result, chip = run_with(s3ws, 2020, gone=True)
    assert_only_its_month_failed(
        s3ws, result,
        f"etm error: chip {chip}: was deleted since this run listed it; its month was not "
        "built: the next run finds it missing, and missing_chips says what then",
    )  # fmt: skip
    assert f"chip {chip}: left out of the baseline: {chip} is gone (404)" in baseline_log(s3ws)


def test_a_chip_deleted_before_its_baseline_lists_it_is_one_line_and_only_its_month_fails(s3ws):
    """Deleted on the server as the baseline (a job in the main process's threads) lists the
    chip's folder: the run's own listing, not the baseline's, says what the run reads."""
    key = s3ws.chip_key(*CHIP)
    folder = quote(key.rsplit("/", 1)[0] + "/", safe="")
    deleted = []

    def delete_on_the_baselines_listing(method: str, path: str) -> bool:
        if method == "GET" and f"prefix={folder}" in path and not deleted:
            s3ws.s3.delete_object(Bucket="ws-out", Key=key)  # straight to the server
            deleted.append(path)
        return False

    s3ws.config.update(products=["etasw"], start_year=2020, end_year=2020)
    result = run_changing_inputs(s3ws, delete_on_the_baselines_listing)
    assert deleted
    assert_only_its_month_failed(
        s3ws, result,
        f"etm error: chip s3://ws-out/{key}: was deleted since this run listed it; its month "
        "was not built: the next run finds it missing, and missing_chips says what then",
    )  # fmt: skip


def test_a_chip_rewritten_after_the_listing_is_one_line_and_only_its_month_is_not_built(
    s3ws, tmp_path
):
    """The chip is really rewritten on the S3 server (other values) as the run's first read
    of it (its tile's baseline) arrives: the whole run went on (it used to stop)."""
    key = s3ws.chip_key(*CHIP)
    rewritten = tmp_path / key.split("/")[-1]
    s3ws.s3.download_file("ws-out", key, str(rewritten))
    rewrite_chip(rewritten, scale=1.01)
    done = []

    def rewrite_on_first_read(method: str, path: str) -> bool:
        if method == "GET" and path.split("?")[0] == f"/ws-out/{key}" and not done:
            s3ws.s3.upload_file(str(rewritten), "ws-out", key)  # straight to the server
            done.append(path)
        return False

    s3ws.config.update(products=["etasw"], start_year=2020, end_year=2020)
    result = run_changing_inputs(s3ws, rewrite_on_first_read)
    assert done
    assert_only_its_month_failed(
        s3ws, result,
        f"etm error: chip s3://ws-out/{key}: was rewritten since this run listed it; its month "
        "was not built: run again to build it from the new file",
    )  # fmt: skip


def test_a_chip_refused_by_s3_is_one_line_and_only_its_month_is_not_built(s3ws):
    """A 403 on a chip a month reads stopped the whole run (a failed retrieval)."""
    result, chip = run_with(s3ws, 2020, deny=True)
    assert_only_its_month_failed(
        s3ws, result,
        f"etm error: S3 refused access (403) to {chip}: the role running etm needs "
        "s3:GetObject on it",
    )  # fmt: skip


def test_a_baseline_reference_chip_refused_leaves_out_that_reference_only(s3ws):
    """The chip's 2020 file is one its tile's baseline reads; a run of 2021 needs no other."""
    result, chip = run_with(s3ws, 2021, deny=True)
    assert result.returncode == 0, result.stderr
    log = baseline_log(s3ws)
    assert f"chip {chip}: left out of the baseline: S3 refused access (403) to {chip}" in log
    assert s3ws.published() == {
        f"tiles/{tile}/etasw/2021/etasw_202107.tif" for tile in (TILE5, TILE6)
    } | {"mosaic/etasw/2021/etasw_202107.tif"}


def test_with_missing_chips_rerun_a_chip_year_deleted_after_the_listing_is_rerun_once(
    s3ws, tmp_path
):
    """The chip's folder of the year (two products) is really deleted from the S3 server as
    the run's first read of it (its tile's baseline) arrives; the fake model writes new
    files (other values, so other ETags) back from a stash, once for both months."""
    tile, chip, _, year, month = CHIP
    products = ["etasw", "netet"]
    keys = [s3ws.chip_key(tile, chip, product, year, month) for product in products]
    stash = tmp_path / "stash" / tile / chip / str(year)
    stash.mkdir(parents=True)
    for key in keys:
        s3ws.s3.download_file("ws-out", key, str(stash / key.split("/")[-1]))
        rewrite_chip(stash / key.split("/")[-1], scale=1.01)
    deleted = []

    def delete_on_first_read(method: str, path: str) -> bool:
        if method == "GET" and path.split("?")[0] == f"/ws-out/{keys[0]}" and not deleted:
            for key in keys:  # straight to the server
                s3ws.s3.delete_object(Bucket="ws-out", Key=key)
            deleted.append(path)
        return False

    s3ws.config.update(
        products=products, start_year=year, end_year=year, missing_chips="rerun",
        chip_rerun_command=f"{sys.executable} {REPO / 'tests' / 'fake_model.py'} --stash "
        f"{tmp_path / 'stash'} --tile {{tile}} --chip {{chip}} --year {{year}} --prefix {{prefix}}",
    )  # fmt: skip
    result = run_changing_inputs(s3ws, delete_on_first_read)
    assert deleted
    assert result.returncode == 0, result.stderr
    assert "etm error" not in result.stderr and "Traceback" not in result.stderr
    assert s3ws.published() == {
        f"tiles/{t}/{product}/{year}/{product}_{year}07.tif"
        for t in (TILE5, TILE6) for product in products
    } | {f"mosaic/{product}/{year}/{product}_{year}07.tif" for product in products}  # fmt: skip
    logs = s3ws.job_logs()
    assert (
        sum(text.count(f"model: model: tile {tile} {chip} {year}") for text in logs.values()) == 1
    )
    for key, product in zip(keys, products, strict=True):
        (log,) = [
            text for name, text in logs.items()
            if name.endswith(f"mosaic_tile/{tile}/{year}/{product}_{year}07.log")
        ]  # fmt: skip
        assert f"chip s3://ws-out/{key}: read s3://ws-out/{key}" in log
        cog = s3ws.download(
            "ws-enduser", f"{OUTPUT}/tiles/{tile}/{product}/{year}/{product}_{year}07.tif"
        )
        assert_chip_in_cog(stash / key.split("/")[-1], cog)
    again = s3ws.command("-n")
    dry = subprocess.run(again[0], cwd=s3ws.root, env=again[1], capture_output=True, text=True)
    assert "0 missing" in dry.stderr and "mosaic_tile" not in dry.stdout, dry.stderr
