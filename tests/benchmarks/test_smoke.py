"""Smoke runs of the benchmarks (the full ones are too slow for CI; see docs/performance.md)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

from etm.sample import MODEL_PIXEL


def run(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_mosaic_benchmark_runs_the_three_methods_and_their_outputs_are_pixel_equal():
    output = run("mosaic_speed.py", "--smoke")
    table = output.split("median of 1\n", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    assert [line.split()[0] for line in table] == ["etm", "gdal", "merge"]
    assert all(line.split()[5] == "yes" for line in table)  # pixel-equal
    assert "x the GDAL command line's, paired by repeat (goal <= 0.9)" in output
    assert "pixel-equal: yes" in output.split("goals:", 1)[1]


def test_concurrent_mosaics_benchmark_checks_every_overview_level():
    output = run("concurrent_mosaics.py", "--smoke")
    assert output.startswith("0 wrong overview levels in 3 mosaics built 3 at a time")
    cog = REPO / "benchmarks" / "cache" / f"tile-cogs-{MODEL_PIXEL * 10:.10f}" / "tile0_0.tif"
    assert run("concurrent_mosaics.py", "--check", str(cog)) == f"{cog}: ok\n"


def test_dry_run_benchmark_reports_time_and_memory():
    output = run("dry_run_1m.py", "--tiles", "1", "--years", "1", "--repeats", "1")
    assert "layout: 3,600 chips" in output
    # 12 products x 12 months x (1 tile + the region), the tile's chip baseline, the
    # catalog, the heatmaps, the quicklooks, the map page, all: the same DAG for etm and both plain
    # Snakefiles (scripts, and shell: rules calling the GDAL command line).
    rows = output.split("peak RSS MB\n", 1)[1].splitlines()[:3]
    assert [(row[:14].strip(), row[14:22].strip()) for row in rows] == [
        ("etm", "294"), ("plain script", "294"), ("plain shell", "294"),
    ]  # fmt: skip
    assert "etm/plain script CPU (paired): " in output
    assert "etm/plain shell CPU (paired): " in output


def test_rebuild_benchmark_times_the_workflow_gdal_and_bare_mosaics_and_prices_encodings():
    output = run("rebuild.py", "--smoke")
    table = output.split("median (min-max) of 1\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line[:9].strip() for line in table[1:5]] == ["workflow", "gdal", "bare", "bare 1"]
    assert "workflow/bare CPU (paired): " in output and "workflow/bare 1 CPU (paired): " in output
    encodings = output.split("Encodings of one tile-month's levels", 1)[1].splitlines()
    assert [line for line in encodings if line.endswith("<- default")][0].startswith("ZSTD 9 ")


def test_catalog_benchmark_reads_one_object_per_region_period_then_only_what_changed():
    output = run("catalog_reads.py", "--tiles", "1", "--years", "1")
    rows = {
        line[:36].strip(): [int(line[36:44].replace(",", "")), int(line[44:50])]
        for line in output.split("CPU-s\n", 1)[1].splitlines()
    }
    # 12 products x 13 periods x (1 tile + the region) Items, and a region object each.
    assert rows == {
        "1. one by one (nothing kept)": [1 + 312, 2],
        "2. first, from 156 region objects": [1 + 156, 2],
        "3. nothing changed": [1, 2],
        "4. one month redone": [1 + 1, 2],
    }


def test_index_benchmark_fetches_one_products_month_index_to_start_a_series():
    output = run("index_size.py", "--tiles", "1", "--years", "1")
    assert "built 312 Items" in output  # 12 products x 13 periods x (1 tile + the region)
    fetched = output.split("etm timeseries (etasw, 12 region months) fetches ", 1)[1]
    assert fetched.split(" bytes in 1 request(s)")[0].replace(",", "").isdigit()
    assert "GET /etasw-monthly/items.parquet whole" in output


def test_series_benchmark_reads_a_point_from_the_store_in_three_requests():
    output = run("series_reads.py", "--smoke")
    assert "a run that adds or redoes one month: " in output
    store, cogs = [
        line.split() for line in output.splitlines() if line.startswith(("store ", "COGs "))
    ]
    assert store[1] == "3" and int(cogs[1]) > 3
    assert output.rstrip().endswith("-> met")


def test_batch_rebuild_benchmark_runs_the_main_process_and_models_the_rebuild():
    output = run("batch_rebuild.py", "run", "--tiles", "1", "--years", "1", "--scale", "60",
                 "--probes", "0")  # fmt: skip
    # A tile baseline, the tile's year, the region's product-year.
    assert "containers: 3 (1 chip_baseline, 1 mosaic_tile, 1 mosaic_region)" in output
    assert "S3 requests of the main process" in output
    output = run("batch_rebuild.py", "model", "--tiles", "1", "--years", "2", "--seeds", "1",
                 "--jobs-per-container", "4", "--nodes", "60")  # fmt: skip
    # The tile's two years in one container (years_per_container), a region's product-year.
    assert "577 jobs in 26 containers (1 baseline, 1 tile, 24 region)" in output
    assert "  4 at once       60     dag" in output
