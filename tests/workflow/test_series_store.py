"""The series store through the snakemake and etm command lines: a month the region lacks
comes from its tiles, and a later run reads again only the months whose COGs changed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import rasterio
from conftest import JULY, SNAKEMAKE, TILE5, TILE6

CHIP = "chip43.4N-102.8E"


def etm_series(workspace, lon: float, lat: float) -> list[list[str]]:
    """`etm timeseries` at a point: its CSV rows, header first."""
    result = subprocess.run(
        [str(Path(SNAKEMAKE).parent / "etm"), "timeseries", "--product", "etasw", "--lon",
         str(lon), "--lat", str(lat), "out"],
        cwd=workspace.root, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [line.split(",") for line in result.stdout.splitlines()]


def cog_value(workspace, href: str, lon: float, lat: float) -> str:
    with rasterio.open(workspace.output / href) as cog:
        (value,) = next(cog.sample([(lon, lat)]))
    return f"{value:.9g}"


def test_every_published_month_at_a_point_and_only_changed_months_read_again(workspace, tmp_path):
    workspace.config.update(products=["etasw"], missing_chips="skip", series_store=True)
    # A chip of tile 6 missing in July 2021: the region's month is not published, tile 5's is.
    chip = workspace.chip(TILE6, CHIP, "etasw", 2021, JULY)
    shutil.move(chip, tmp_path / chip.name)
    run = workspace.snakemake()
    assert run.returncode == 0, run.stderr
    assert not workspace.region_cog("etasw", 2021, JULY).exists()
    record = workspace.logs / "series_store" / "etasw.json"
    assert json.loads(record.read_text())["read"] == ["202007", "202107"]

    in_tile5, in_tile6 = (-110.3, 42.1), (-102.3, 42.1)
    tile_month = f"tiles/{TILE5}/etasw/2021/etasw_202107.tif"
    series = etm_series(workspace, *in_tile5)
    assert series == [
        ["period", "value_mm", "cog"],
        ["2020-07", cog_value(workspace, "mosaic/etasw/2020/etasw_202007.tif", *in_tile5),
         "mosaic/etasw/2020/etasw_202007.tif"],
        ["2021-07", cog_value(workspace, tile_month, *in_tile5), tile_month],
    ]  # fmt: skip
    # Tile 6's July 2021 is not published: its points have 2020 only.
    assert [row[0] for row in etm_series(workspace, *in_tile6)] == ["period", "2020-07"]
    # The same from the COGs, without the store.
    shutil.move(workspace.output / "series", tmp_path / "series")
    assert etm_series(workspace, *in_tile5) == series
    shutil.move(tmp_path / "series", workspace.output / "series")

    # The chip is back: the region's July 2021 is published, and only it is read again.
    shutil.move(tmp_path / chip.name, chip)
    run = workspace.snakemake()
    assert run.returncode == 0, run.stderr
    assert json.loads(record.read_text())["read"] == ["202107"]
    region_month = "mosaic/etasw/2021/etasw_202107.tif"
    assert etm_series(workspace, *in_tile6)[2] == [
        "2021-07", cog_value(workspace, region_month, *in_tile6), region_month,
    ]  # fmt: skip
    assert not [p for p in (workspace.output / "series").iterdir() if p.name.startswith(".")]
