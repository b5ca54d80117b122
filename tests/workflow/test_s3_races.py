"""A chip gone or refused between the run's listing and its read, on S3: one line naming it,
and only its month is not built. Through the real snakemake CLI, the workflow's clients
reaching the loopback S3 server through tests/faultproxy.py."""

from __future__ import annotations

import sys

import pytest
from conftest import JULY, REPO, TILE5, TILE6, assert_chip_in_cog
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


def etm_errors(result) -> set[str]:
    return {line for line in result.stderr.splitlines() if line.startswith("etm error:")}


def baseline_log(s3ws) -> str:
    (log,) = [text for key, text in s3ws.job_logs().items() if f"chip_baseline/{TILE6}" in key]
    return log


def test_a_chip_deleted_after_the_listing_is_one_line_and_only_its_month_is_not_built(s3ws):
    result, chip = run_with(s3ws, 2020, gone=True)
    assert result.returncode == 1
    assert etm_errors(result) == {
        f"etm error: chip {chip}: was deleted since this run listed it; its month was not "
        "built: the next run finds it missing, and missing_chips says what then"
    }, result.stderr
    assert "Failed to retrieve" not in result.stderr and "Traceback" not in result.stderr
    assert f"chip {chip}: left out of the baseline: {chip} is gone (404)" in baseline_log(s3ws)
    assert s3ws.published() == {"tiles/r50.0_tile5/etasw/2020/etasw_202007.tif"}


def test_a_baseline_reference_chip_refused_leaves_out_that_reference_only(s3ws):
    """The chip's 2020 file is one its tile's baseline reads; a run of 2021 needs no other."""
    result, chip = run_with(s3ws, 2021, deny=True)
    assert result.returncode == 0, result.stderr
    log = baseline_log(s3ws)
    assert f"chip {chip}: left out of the baseline: S3 refused access (403) to {chip}" in log
    assert s3ws.published() == {
        f"tiles/{tile}/etasw/2021/etasw_202107.tif" for tile in (TILE5, TILE6)
    } | {"mosaic/etasw/2021/etasw_202107.tif"}


def test_with_missing_chips_rerun_a_chip_deleted_after_the_listing_is_rerun_and_its_month_built(
    s3ws, tmp_path
):
    """The chip is really deleted from the S3 server as the run's first read of it (its
    tile's baseline) arrives; the fake model writes it back from a stash."""
    tile, chip, product, year, month = CHIP
    key = s3ws.chip_key(*CHIP)
    stashed = tmp_path / "stash" / tile / chip / str(year) / key.split("/")[-1]
    stashed.parent.mkdir(parents=True)
    s3ws.s3.download_file("ws-out", key, str(stashed))
    deleted = []

    def delete_on_first_read(method: str, path: str) -> bool:
        if method == "GET" and path.split("?")[0] == f"/ws-out/{key}" and not deleted:
            s3ws.s3.delete_object(Bucket="ws-out", Key=key)  # straight to the server
            deleted.append(path)
        return False

    proxy = FaultProxy(s3ws.server.endpoint, gone=delete_on_first_read)
    s3ws.endpoint = proxy.endpoint
    s3ws.config.update(
        products=[product], start_year=year, end_year=year, missing_chips="rerun",
        chip_rerun_command=f"{sys.executable} {REPO / 'tests' / 'fake_model.py'} --stash "
        f"{tmp_path / 'stash'} --tile {{tile}} --chip {{chip}} --year {{year}} --prefix {{prefix}}",
    )  # fmt: skip
    try:
        result, _ = s3ws.snakemake()
    finally:
        proxy.stop()
    assert deleted
    assert result.returncode == 0, result.stderr
    assert "etm error" not in result.stderr and "Traceback" not in result.stderr
    assert s3ws.published() == {
        f"tiles/{t}/{product}/{year}/{product}_{year}07.tif" for t in (TILE5, TILE6)
    } | {f"mosaic/{product}/{year}/{product}_{year}07.tif"}
    (log,) = [
        text for name, text in s3ws.job_logs().items()
        if name.endswith(f"mosaic_tile/{tile}/{year}/{product}_{year}07.log")
    ]  # fmt: skip
    assert f"chip s3://ws-out/{key}: was deleted since this run listed it; rerun the model" in log
    assert f"model: model: tile {tile} {chip} {year}" in log
    cog = s3ws.download(
        "ws-enduser", f"{OUTPUT}/tiles/{tile}/{product}/{year}/{product}_{year}07.tif"
    )
    assert_chip_in_cog(stashed, cog)
