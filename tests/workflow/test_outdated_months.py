"""Nothing outdated is ever kept: what each COG was built from decides which months are built
again, whatever the chips' times say; and configs that share tile names share nothing else.
Through the snakemake CLI."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from conftest import (
    JULY,
    REPO,
    TILE5,
    TILE6,
    Workspace,
    generate,
    job_counts,
    snakemake_command,
)

from etm.provenance import LEDGER
from etm.sample import tile_prefix

LATER = "Run08_19_2021"
CHIP = "chip43.4N-102.8E"


def rewrite_inside(path: Path, value: float, keep_time: bool = False, to: Path | None = None):
    """A new version of a chip: its pixels but the edges shared with its neighbours set to
    ``value`` (as a rerun of the model for it would change them), written to ``to`` (or in
    place, as ``cp -p`` does: same file, its old modification time kept)."""
    with rasterio.open(path) as source:
        profile, values = source.profile, source.read(1)
    inner = values[2:-2, 2:-2]
    values[2:-2, 2:-2] = np.where(np.isnan(inner), np.nan, value)
    target = to or path
    before = os.stat(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(target, "w", **profile) as out:
        out.write(values, 1)
    if keep_time:
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))


def holds(cog: Path, value: float) -> int:
    """How many pixels of a COG hold ``value``."""
    with rasterio.open(cog) as source:
        return int(np.count_nonzero(source.read(1) == value))


def test_a_newer_copy_under_an_added_run_prefix_is_published_though_older_than_the_cog(
    workspace,
):
    chip = workspace.chip(TILE6, CHIP, "etasw", 2020, JULY)
    newer = workspace.chip(TILE6, CHIP, "etasw", 2020, JULY, run=LATER)
    rewrite_inside(chip, 150.0, to=newer)  # written before the first run: older than its COG
    assert workspace.snakemake().returncode == 0
    cog = workspace.tile_cog(TILE6, "etasw", 2020, JULY)
    assert holds(cog, 150.0) == 0

    workspace.config["unmosaicked_inputs"].append(workspace.prefix(TILE6, run=LATER))
    dry = workspace.snakemake("-n")
    assert "1 published tile-month is outdated, built again" in dry.stderr, dry.stderr
    assert job_counts(dry.stdout)["mosaic_tile"] == 1
    with open(workspace.reports / "outdated_months.csv") as stream:
        assert list(csv.DictReader(stream)) == [
            {"cog": f"tiles/{TILE6}/etasw/2020/etasw_202007.tif",
             "reason": "its chip files changed since it was built"},
        ]  # fmt: skip
    assert workspace.snakemake().returncode == 0
    assert holds(cog, 150.0) > 1000
    assert holds(workspace.region_cog("etasw", 2020, JULY), 150.0) > 1000
    again = workspace.snakemake("-n")
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow  # two full runs
def test_a_chip_rewritten_with_its_old_time_is_published_at_the_next_run(workspace):
    assert workspace.snakemake().returncode == 0
    chip = workspace.chip(TILE5, "chip43.4N-112.8E", "netet", 2021, JULY)
    rewrite_inside(chip, 77.0, keep_time=True)  # cp -p, rsync -a
    assert workspace.snakemake().returncode == 0
    assert holds(workspace.tile_cog(TILE5, "netet", 2021, JULY), 77.0) > 1000


@pytest.mark.slow
def test_a_month_outdated_again_is_built_again(workspace):
    """Each run writes its list of outdated months anew; with the same months listed as the
    last time, Snakemake would take it, by its recorded checksum, as unchanged."""
    assert workspace.snakemake().returncode == 0
    chip, cog = (
        workspace.chip(TILE6, CHIP, "etasw", 2020, JULY),
        workspace.tile_cog(TILE6, "etasw", 2020, JULY),
    )
    for value in (150.0, 250.0):
        rewrite_inside(chip, value)
        result = workspace.snakemake()
        assert result.returncode == 0, result.stderr
        assert "1 published tile-month is outdated, built again" in result.stderr
        assert holds(cog, value) > 1000, value


def test_a_chip_rewritten_once_its_month_is_read_is_published_by_the_next_run(workspace):
    """The chip is rewritten (keeping its old time) once its month's levels are written:
    that month's COG holds the old values; the next run builds it again."""
    chip = workspace.chip(TILE6, CHIP, "netet", 2021, JULY)
    name = "netet_202107.tif"
    folder = workspace.tile_cog(TILE6, "netet", 2021, JULY).parent
    workspace.write_config()
    run = subprocess.Popen(
        snakemake_command(cores=1), cwd=workspace.root, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    while not (folder.exists() and any(p.name.startswith(f".{name}") or p.name == name
                                       for p in folder.iterdir())):  # fmt: skip
        assert run.poll() is None, run.communicate()
        time.sleep(0.005)
    rewrite_inside(chip, 66.0, keep_time=True)
    _, stderr = run.communicate(timeout=600)
    # Either its month failed, naming the chip, or it was published from what was read.
    assert run.returncode == 0 or "was rewritten while its month was built" in stderr, stderr
    second = workspace.snakemake()
    assert second.returncode == 0, second.stderr
    assert holds(workspace.tile_cog(TILE6, "netet", 2021, JULY), 66.0) > 1000
    third = workspace.snakemake("-n")
    assert "Nothing to be done" in third.stdout + third.stderr


@pytest.fixture
def one_year(tmp_path) -> Workspace:
    """Tile6's etasw of January, July and December 2020 (the files its chips' usual NaN
    shares are read from)."""
    generate(tmp_path, products=("etasw",), years=(2020,), months=(1, 7, 12), tiles=(TILE6,))
    workspace = Workspace(tmp_path)
    workspace.config.update(
        products=["etasw"], start_year=2020, end_year=2020, months=[1, 7, 12],
        unmosaicked_inputs=[workspace.prefix(TILE6)], tiles={},
    )  # fmt: skip
    return workspace


def empty_inside(path: Path) -> None:
    """The chip written without its data but on its edges."""
    with rasterio.open(path) as source:
        profile, values = source.profile, source.read(1)
    values[2:-2, 2:-2] = np.nan
    with rasterio.open(path, "w", **profile) as out:
        out.write(values, 1)


def test_a_chip_empty_in_two_of_its_three_reference_months_is_refused_in_both(one_year):
    for month in (7, 12):
        empty_inside(one_year.chip(TILE6, CHIP, "etasw", 2020, month))
    result = one_year.snakemake("--keep-going")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("etm error")]
    assert len(errors) == 2, result.stderr
    for month, line in zip((7, 12), sorted(errors), strict=True):
        path = one_year.chip(TILE6, CHIP, "etasw", 2020, month).relative_to(one_year.root)
        assert line.startswith(f"etm error: chip {path}: is suspect: 9"), line
        assert "of its pixels are NaN, where it usually has" in line
    assert one_year.published() == one_year.expected_cogs(
        {(TILE6, "etasw", 2020, 7), (TILE6, "etasw", 2020, 12)}
    )


def test_an_unproduced_chip_that_has_data_is_a_warning_and_in_the_report(one_year):
    one_year.config["unproduced_chips"] = [CHIP]
    result = one_year.snakemake()
    assert result.returncode == 0, result.stderr
    assert (
        f"etm: warning: {TILE6} {CHIP} is listed in unproduced_chips but has 3 chip files: left "
        "out of every mosaic" in result.stderr
    ), result.stderr
    with open(one_year.reports / "chip_findings.csv") as stream:
        rows = [row for row in csv.DictReader(stream) if row["status"] == "left out"]
    assert sorted(int(row["month"]) for row in rows if row["chip"] == CHIP) == [1, 7, 12]


def test_nan_in_the_plausibility_settings_is_one_line_naming_the_key(one_year):
    one_year.config["plausibility"] = {"ranges": {"etasw": [float("nan"), 2000]}}
    result = one_year.snakemake("-n")
    assert result.returncode == 1
    assert (
        "etm error: config key 'plausibility.ranges.etasw.0': nan is not a finite number; "
        "write a number"
    ) in result.stderr.splitlines(), result.stderr
    one_year.config["plausibility"] = {"nan_share_jump": float("nan")}
    assert "'plausibility.nan_share_jump': nan is not" in one_year.snakemake("-n").stderr


@pytest.mark.slow  # four runs of the demo's size
def test_configs_sharing_tile_names_each_build_everything_in_one_directory(tmp_path):
    """The demo, then another config with the same tile names, then the demo again."""
    generate(tmp_path)
    shutil.copy(REPO / "config" / "sample.yaml", tmp_path / "sample.yaml")
    other = {
        "products": ["etasw"], "start_year": 2020, "end_year": 2020, "months": [7],
        "unmosaicked_inputs": [
            os.path.relpath(tile_prefix(str(tmp_path / "sample"), tile), tmp_path) + "/"
            for tile in (TILE5, TILE6)
        ],
        "enduser_cog_output": "other/published/",
        "max_concurrent_containers": 2,
    }  # fmt: skip
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(other))
    runs = (("sample.yaml", "sample/ws-enduser/USA/demo", 78), ("other.yaml", "other/published", 3))
    for config, output, cogs in (*runs, runs[0]):
        result = subprocess.run(
            snakemake_command(configfile=config), cwd=tmp_path, capture_output=True, text=True
        )
        assert result.returncode == 0, (config, result.stderr)
        assert len(list((tmp_path / output).rglob("*.tif"))) == cogs
    assert "Nothing to be done" in result.stdout + result.stderr  # the demo again: up to date


@pytest.mark.parametrize("kind", ["garbage", "fifo"])
def test_a_ledger_etm_did_not_write_stops_the_dry_run_in_one_line(workspace, kind):
    ledger = workspace.output / LEDGER
    ledger.parent.mkdir(parents=True)
    if kind == "fifo":
        os.mkfifo(ledger)  # a read would wait for a writer forever
    else:
        ledger.write_bytes(b"not gzip")
    result = workspace.snakemake("-n", timeout=120)
    assert result.returncode == 1, result.stderr
    (error,) = [line for line in result.stderr.splitlines() if "etm error" in line]
    why = "not a regular file): move what is in its place away" if kind == "fifo" else (
        "Error -3 while decompressing data: incorrect header check): etm keeps in it"
    )  # fmt: skip
    assert error.startswith(f"etm error: the provenance ledger out/{LEDGER} cannot be read ({why}")
    assert "Traceback" not in result.stderr


def test_a_baseline_etm_did_not_write_fails_its_months_in_one_line(workspace):
    workspace.config["end_year"] = 2020
    assert workspace.snakemake().returncode == 0
    (baseline,) = (workspace.root / "logs").rglob(f"baselines/{TILE6}.json")
    baseline.write_text("[]")
    workspace.tile_cog(TILE6, "etasw", 2020, JULY).unlink()
    result = workspace.snakemake()
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("etm error")]
    assert errors == [
        f"etm error: the baseline {baseline.relative_to(workspace.root)} is not one etm wrote: "
        "remove it, and the next run computes it again"
    ], result.stderr
    assert "Traceback" not in result.stderr
