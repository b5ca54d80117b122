"""A chip gone or refused between the run's listing and its read, on S3: one line naming it,
and only its month is not built. Through the real snakemake CLI, the workflow's clients
reaching the loopback S3 server through tests/faultproxy.py."""

from __future__ import annotations

import pytest
from conftest import JULY, TILE5, TILE6
from faultproxy import FaultProxy

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
