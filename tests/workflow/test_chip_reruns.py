"""missing_chips: rerun: the model is rerun for missing chips, through a fake model command."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import (
    JULY,
    REPO,
    TILE5,
    TILE6,
    Workspace,
    assert_chip_in_cog,
    checksums,
    job_counts,
)
from rio_cogeo.cogeo import cog_validate
from s3workspace import OUTPUT

pytestmark = pytest.mark.slow  # end-to-end runs on S3 or several runs each (make test-fast)

#: A chip missing for one product and month; a chip missing for a whole year.
ONE_FILE = (TILE6, "chip43.4N-102.8E", "etasw", 2020)
WHOLE_YEAR = (TILE5, "chip45.4N-114.8E", None, 2021)


def remove_chips(workspace: Workspace, stash) -> None:
    """Move the two chips' files to the stash the fake model copies them back from."""
    for tile, chip, product, year in (ONE_FILE, WHOLE_YEAR):
        folder = workspace.chip(tile, chip, "etasw", year, JULY).parent
        kept = stash / tile / chip / f"{year}"
        kept.mkdir(parents=True)
        for chip_file in sorted(folder.iterdir()):
            if product is None or chip_file.name.startswith(f"{product}_"):
                shutil.move(chip_file, kept / chip_file.name)


def configure(workspace: Workspace, stash, *model_options: str) -> None:
    workspace.config["missing_chips"] = "rerun"
    workspace.config["chip_rerun_command"] = " ".join(
        [sys.executable, str(REPO / "tests" / "fake_model.py"), "--stash", str(stash),
         "--tile {tile} --chip {chip} --year {year} --prefix {prefix}", *model_options]
    )  # fmt: skip


def test_missing_chips_are_rerun_through_the_model_before_their_months(workspace, tmp_path):
    stash = tmp_path / "stash"
    remove_chips(workspace, stash)
    stashed = checksums(stash)
    configure(workspace, stash)

    dry = workspace.snakemake("-n")
    assert dry.returncode == 0, dry.stderr
    assert "etm: 3 chip files missing; the model is rerun for their chips" in dry.stderr
    counts = job_counts(dry.stdout)
    assert counts["rerun_chip"] == 2 and counts["chips_rerun"] == 2
    assert counts["mosaic_tile"] == 8 and counts["mosaic_region"] == 4

    run = workspace.snakemake(chips_added=True)
    assert run.returncode == 0, run.stderr
    restored = {
        str(path.relative_to(stash)): digest for path, digest in
        ((stash / p, d) for p, d in stashed.items())
    }  # fmt: skip
    after = checksums(workspace.chips_root)
    for relative, digest in restored.items():
        tile, chip, year, name = relative.split("/")
        path = workspace.chip(tile, chip, "etasw", int(year), JULY).parent / name
        assert after[str(path.relative_to(workspace.chips_root))] == digest
    assert workspace.published() == workspace.expected_cogs()
    for cog in workspace.published():
        assert cog_validate(str(workspace.output / cog), quiet=True)[0], cog
    # The rerun chip is in its month's mosaic.
    chip = workspace.chip(*ONE_FILE[:3], 2020, JULY)
    assert_chip_in_cog(chip, workspace.tile_cog(TILE6, "etasw", 2020, JULY))
    rerun_log = workspace.logs / "rerun_chip" / TILE6 / "2020" / "chip43.4N-102.8E.log"
    assert "model: model: tile r50.0_tile6 chip43.4N-102.8E 2020" in rerun_log.read_text()
    assert not list((workspace.root / "reruns").rglob("chip*.json"))  # markers are temporary
    # Next run: nothing is missing, so only the heatmaps change.
    again = workspace.snakemake("-n")
    assert job_counts(again.stdout) == {"completeness": 1, "all": 1, "total": 2}


def test_a_chip_still_missing_after_its_rerun_fails_its_months_with_one_line(workspace, tmp_path):
    stash = tmp_path / "stash"
    remove_chips(workspace, stash)
    configure(workspace, stash, "--lose", ONE_FILE[1], "--crash", WHOLE_YEAR[1])
    run = workspace.snakemake("--keep-going", chips_added=True)
    assert run.returncode != 0
    lines = sorted({line for line in run.stderr.splitlines() if line.startswith("etm error:")})
    lost = workspace.chip(*ONE_FILE[:3], 2020, JULY).relative_to(workspace.root)
    assert lines == [
        f"etm error: chip {lost}: still missing after the model was rerun for it; see the "
        "rerun job's log under logs/, then run again to rerun it",
        f"etm error: rerun of tile {TILE5} {WHOLE_YEAR[1]} 2021 failed: the command exited "
        "with status 3; its output is in this job's log; fix the command or the model, then "
        "run again",
    ], run.stderr
    left_out = {(TILE6, "etasw", 2020, JULY), (TILE5, "etasw", 2021, JULY),
                (TILE5, "netet", 2021, JULY)}  # fmt: skip
    assert workspace.published() == workspace.expected_cogs(left_out)


def test_missing_chips_are_rerun_on_s3_and_their_months_built(s3ws, tmp_path):
    stash = tmp_path / "stash"
    tile, chip, product, year = ONE_FILE
    key = s3ws.chip_key(tile, chip, product, year, JULY)
    (stash / tile / chip / f"{year}").mkdir(parents=True)
    s3ws.s3.download_file("ws-out", key, str(stash / tile / chip / f"{year}" / key.split("/")[-1]))
    s3ws.s3.delete_object(Bucket="ws-out", Key=key)
    configure(s3ws, stash)

    command, environment = s3ws.command()
    run = subprocess.run(
        command, cwd=s3ws.root, env=environment, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr
    assert key in s3ws.objects("ws-out")
    assert s3ws.published() == s3ws.expected_cogs()
    cog = s3ws.download(
        "ws-enduser", f"{OUTPUT}/tiles/{tile}/{product}/{year}/{product}_{year}07.tif"
    )
    assert cog_validate(cog, quiet=True)[0]
    assert_chip_in_cog(stash / tile / chip / f"{year}" / key.split("/")[-1], cog)
