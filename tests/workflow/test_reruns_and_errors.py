"""Reruns, interrupted runs and bad inputs, through the real snakemake CLI."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest
import rasterio
import yaml
from affine import Affine
from conftest import JULY, TILE5, TILE6, checksums, job_counts, rewrite_chip, snakemake_command
from rio_cogeo.cogeo import cog_validate


def mtimes(workspace) -> dict[str, int]:
    return {p: (workspace.output / p).stat().st_mtime_ns for p in workspace.published()}


@pytest.mark.slow  # as on S3 (test_s3.py), with two full runs
def test_second_run_does_nothing_and_a_rewritten_chip_reruns_its_two_months(workspace):
    assert workspace.snakemake().returncode == 0
    assert workspace.published() == workspace.expected_cogs()
    second = workspace.snakemake("-n")
    assert second.returncode == 0 and "Nothing to be done" in second.stdout + second.stderr
    before = mtimes(workspace)

    rewrite_chip(workspace.chip(TILE6, "chip43.4N-102.8E", "netet", 2021, JULY), scale=1.01)
    dry = workspace.snakemake("-n")
    assert job_counts(dry.stdout) == {
        "mosaic_tile": 1, "mosaic_region": 1, "stac_catalog": 1, "quicklooks": 1, "all": 1,
        "total": 5,
    }  # fmt: skip
    assert workspace.snakemake().returncode == 0
    after = mtimes(workspace)
    rerun = {path for path in before if after[path] != before[path]}
    assert rerun == {
        f"tiles/{TILE6}/netet/2021/netet_202107.tif",
        "mosaic/netet/2021/netet_202107.tif",
    }
    # Its quicklook only is drawn again: the scales, fitted over the archive, are the same.
    (log,) = (workspace.root / "logs").glob("*/quicklooks.log")
    drawn = [line.rpartition("/")[2] for line in log.read_text().splitlines() if " drew " in line]
    assert drawn == ["netet_202107.png"]
    third = workspace.snakemake("-n")
    assert "Nothing to be done" in third.stdout + third.stderr


def is_hidden(path: str) -> bool:
    return os.path.basename(path).startswith(".")


@pytest.mark.slow
@pytest.mark.parametrize("published_before_kill", [1, 5])
def test_killed_run_then_rerun_incomplete_finishes_only_what_was_left(
    workspace, published_before_kill
):
    (workspace.root / "test.yaml").write_text(yaml.safe_dump(workspace.config))
    before = checksums(workspace.chips_root)
    output = workspace.root / "killed-run.log"
    with open(output, "w") as stream:
        run = subprocess.Popen(
            snakemake_command(cores=1),
            cwd=workspace.root,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:
            done = [p for p in workspace.published() if not is_hidden(p)]
            if len(done) >= published_before_kill:
                break
            time.sleep(0.02)
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    assert checksums(workspace.chips_root) == before

    survivors = {p for p in workspace.published() if not is_hidden(p)}
    seen = f"seen {sorted(done)}, kept {sorted(survivors)}:\n{output.read_text()[-3000:]}"
    assert published_before_kill <= len(survivors) < len(workspace.expected_cogs()), seen
    for path in survivors:
        assert cog_validate(str(workspace.output / path), quiet=True)[0], path
    kept = mtimes(workspace)

    # What docs/operators.md tells users after a crash: remove Snakemake's stale lock, then resume.
    assert workspace.snakemake("--unlock").returncode == 0
    resumed = workspace.snakemake("--rerun-incomplete")
    assert resumed.returncode == 0, resumed.stderr
    assert workspace.published() == workspace.expected_cogs()
    # With one core, one job was in flight: it may have published its COG just before the kill,
    # before Snakemake recorded the job as finished, so it is redone. Nothing else is.
    redone = {p for p, t in mtimes(workspace).items() if p in survivors and t != kept[p]}
    assert len(redone) <= 1, redone
    for path in workspace.published():
        assert cog_validate(str(workspace.output / path), quiet=True)[0], path


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("etm error:")]


def shifted(path, dx_px: float, dy_px: float) -> Affine:
    with rasterio.open(path) as src:
        t = src.transform
    return Affine(t.a, 0, t.c + dx_px * t.a, 0, t.e, t.f - dy_px * t.e)


BAD_CHIP = (TILE6, "chip43.4N-102.8E", "etasw", 2020, JULY)


@pytest.mark.parametrize(
    "damage, reason",
    [
        ("truncated", "cannot be read in full, truncated or corrupt"),
        # The fast loop keeps one damage through the CLI; make test runs all three.
        pytest.param(
            "other_crs",
            "is in EPSG:4269; chips are on longitude and latitude",
            marks=pytest.mark.slow,
        ),
        pytest.param("half_pixel", "is 0.50 pixel off the pixel lattice", marks=pytest.mark.slow),
        # Copied with its times from a machine whose clock runs a day ahead.
        pytest.param("ahead", "its modification time, ", marks=pytest.mark.slow),
    ],
)
def test_bad_chip_fails_its_month_with_one_line_naming_it(workspace, damage, reason):
    chip = workspace.chip(*BAD_CHIP)
    if damage == "truncated":
        data = chip.read_bytes()
        chip.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "ahead":
        ahead = time.time() + 86400
        os.utime(chip, (ahead, ahead))
    elif damage == "other_crs":
        rewrite_chip(chip, crs="EPSG:4269")
    else:
        # Half a pixel off the lattice, yet within half a pixel of its name's corner.
        with rasterio.open(chip) as src:
            towards_corner = 0.5 if src.transform.c < -102.8 else -0.5
        rewrite_chip(chip, transform=shifted(chip, towards_corner, 0))
    # The local profile keeps going: the other months are still built (one year of them).
    workspace.config.update(end_year=2020)
    result = workspace.snakemake(profile="local")
    assert result.returncode != 0
    lines = error_lines(result)
    assert lines, result.stderr
    relative = str(chip.relative_to(workspace.root))
    assert all(line == lines[0] for line in lines)  # the same line for each retry
    assert lines[0].startswith(f"etm error: chip {relative}: {reason}"), lines[0]
    assert "clock skew" not in result.stderr  # Snakemake's own lines, after the job
    failed_month = {
        f"tiles/{TILE6}/etasw/2020/etasw_202007.tif",
        "mosaic/etasw/2020/etasw_202007.tif",
    }
    assert workspace.published() == workspace.expected_cogs() - failed_month


def test_a_config_error_is_one_line_naming_the_key(workspace):
    """Through the CLI once; every config error's message is checked in test_config.py."""
    workspace.config.update(produts=["etasw"])
    message = "config: unknown key 'produts'; did you mean 'products'?"
    for args in (["-n"], []):
        result = workspace.snakemake(*args)
        assert result.returncode != 0
        lines = error_lines(result)
        assert len(lines) == 1 and lines[0].startswith(f"etm error: {message}"), result.stderr
    assert workspace.published() == set()


def test_chip_off_the_chip_lattice_is_named_before_any_job(workspace):
    stray = workspace.chip(TILE6, "chip46.4N-102.8E", "etasw", 2020, JULY)
    stray.parent.mkdir(parents=True)
    stray.write_bytes(workspace.chip(*BAD_CHIP).read_bytes())
    result = workspace.snakemake("-n")
    assert result.returncode != 0
    folder = str(stray.parent.parent.relative_to(workspace.root))
    assert error_lines(result) == [
        f"etm error: chip {folder}: is off the 2-degree chip lattice of tile {TILE6}; "
        "move or delete it, or fix chip_size_deg"
    ]


def test_workflow_passes_snakemake_lint(workspace):
    result = workspace.snakemake("--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition" in result.stdout + result.stderr


def test_tile5_is_verified_against_its_configured_bounds(workspace):
    # tile5 lists its 25 chips by bounds: a chip missing entirely is still reported.
    shutil.rmtree(workspace.chip(TILE5, "chip39.4N-116.8E", "etasw", 2020, JULY).parent.parent)
    result = workspace.snakemake("-n")
    assert result.returncode != 0
    assert (
        f"etm: {TILE5} chip39.4N-116.8E: no file for any product or month: the model never "
        "ran for this chip; rerun it, or list the chip under unproduced_chips if it never will "
        "be produced" in result.stderr.splitlines()
    )
