"""A chip file of another month, product or model run, or shifted, copied under a chip's
name: its header is right and its values plausible, but it disagrees with its neighbours
on the pixels they share. One run over twelve months through the snakemake CLI, each
month with its own case (tests/mutations.py)."""

from __future__ import annotations

import csv

import mutations
import numpy as np
import pytest
import rasterio
from conftest import TILE6, Workspace, assert_chip_in_cog, generate, tile_year
from rio_cogeo.cogeo import cog_validate

from etm.grid import Chip

pytestmark = pytest.mark.slow  # a run of twelve months (make test-fast)

YEAR = 2020
BAD = "chip43.4N-102.8E"  # in the middle of tile6: four neighbours, in reading order
BAD_NEIGHBOURS = ("chip45.4N-102.8E", "chip43.4N-104.8E", "chip43.4N-100.8E", "chip41.4N-102.8E")
CORNER = "chip47.4N-106.8E"  # tile6's north-west corner: two neighbours
CORNER_NEIGHBOURS = ("chip47.4N-104.8E", "chip45.4N-106.8E")
#: A lake (longitude, latitude, radius in degrees) over 94% of a chip on tile6's east edge,
#: crossing into its three neighbours: the model's water mask, in every month.
LAKE = (-97.8, 40.4, 1.2)
LAKE_CHIP = "chip41.4N-98.8E"
LAKE_NEIGHBOURS = ("chip43.4N-98.8E", "chip41.4N-100.8E", "chip39.4N-98.8E")
#: Month: the chip refused and its neighbours named, or None when the month is published.
#: The all-NaN chips are suspect by their history too (their usual NaN share, the least of
#: January, July and December, is 0%); under suspect_chips: warn, their neighbours refuse them.
REFUSED = {
    1: (BAD, BAD_NEIGHBOURS),  # all NaN
    7: (BAD, BAD_NEIGHBOURS),  # its January file
    8: (BAD, BAD_NEIGHBOURS),  # its netet file
    9: (BAD, BAD_NEIGHBOURS),  # its pixels moved a pixel east, its georeferencing kept
    10: (CORNER, CORNER_NEIGHBOURS),  # its January file
    11: (LAKE_CHIP, LAKE_NEIGHBOURS),  # all NaN, where 94% usually is: no jump
    12: (BAD, BAD_NEIGHBOURS),  # all NaN
}


@pytest.fixture(scope="session")
def both_products(tmp_path_factory):
    """Tile6's etasw and netet for every month of 2020."""
    return generate(
        tmp_path_factory.mktemp("neighbours"), products=("etasw", "netet"), years=(YEAR,),
        tiles=(TILE6,),
    )  # fmt: skip


@pytest.fixture
def months(tmp_path, both_products) -> Workspace:
    return tile_year(both_products, tmp_path, YEAR)


def chip(workspace, month, name=BAD, product="etasw"):
    return workspace.chip(TILE6, name, product, YEAR, month)


def nan_share(path) -> float:
    with rasterio.open(path) as source:
        return float(np.isnan(source.read(1)).mean())


def test_a_chip_its_neighbours_disagree_with_is_refused_naming_them(months):
    for name in (LAKE_CHIP, *LAKE_NEIGHBOURS):
        for month in range(1, 13):
            mutations.lake(chip(months, month, name), *LAKE)
    mutations.copy_of(chip(months, 7), chip(months, 1))
    mutations.copy_of(chip(months, 8), chip(months, 8, product="netet"))
    mutations.moved(chip(months, 9))
    mutations.copy_of(chip(months, 10, CORNER), chip(months, 1, CORNER))
    for month, name in ((1, BAD), (12, BAD), (11, LAKE_CHIP)):
        mutations.all_nan(chip(months, month, name))
    assert nan_share(chip(months, 6, LAKE_CHIP)) > 0.9

    months.config["suspect_chips"] = "warn"
    result = months.snakemake("--keep-going")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("etm error")]
    assert len(errors) == len(REFUSED), errors  # its neighbours are not refused
    for month, (name, neighbours) in REFUSED.items():
        path = chip(months, month, name).relative_to(months.root)
        line = next(line for line in errors if line.startswith(f"etm error: chip {path}: "))
        problem = line.split(": ", 2)[2]
        count = len(neighbours)
        assert problem.startswith(
            f"disagrees with {count} of its {count} neighbours where they overlap: "
            f"{neighbours[0]} (on 100% of the "
        ), line
        assert [problem.index(f"{other} (") for other in neighbours] == sorted(
            problem.index(f"{other} (") for other in neighbours
        ), line
        assert problem.endswith(
            "it looks like another product's, month's or model run's file, or shifted: "
            "rerun the model for it"
        ), line

    published = {p for p in months.published() if p.endswith(".tif")}
    assert published == {
        f"{kind}/etasw/{YEAR}/etasw_{YEAR}{month:02d}.tif"
        for month in range(2, 7)
        for kind in (f"tiles/{TILE6}", "mosaic")
    }
    for cog in published:
        assert cog_validate(str(months.output / cog), quiet=True)[0], cog
    # The lake's chip, its edges NaN where its neighbours' are, is published as it is.
    for month in range(2, 7):
        assert_chip_in_cog(
            chip(months, month, LAKE_CHIP), months.tile_cog(TILE6, "etasw", YEAR, month)
        )


def test_a_suspect_chip_its_neighbours_disagree_with_is_refused_even_under_warn(months):
    mutations.all_nan(chip(months, 3))  # its usual NaN share is 0%: suspect too
    months.config.update(suspect_chips="warn", months=[3])
    result = months.snakemake()
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("etm error")]
    path = chip(months, 3).relative_to(months.root)
    assert len(errors) == 1 and errors[0].startswith(
        f"etm error: chip {path}: disagrees with 4 of its 4 neighbours where they overlap: "
    ), errors
    assert "suspect chip files were used" not in result.stderr
    with open(months.reports / "chip_findings.csv") as stream:
        rows = [(row["chip"], row["status"]) for row in csv.DictReader(stream)]
    assert rows == [(BAD, "refused")]
    assert not [p for p in months.published() if p.endswith(".tif")]


def test_an_archive_whose_overlaps_differ_everywhere_is_one_line_a_month_until_tolerated(
    months,
):
    """A model that computes a shared pixel differently in each chip: every overlap of a
    month disagrees a little. One line for the month, with the largest difference; with
    plausibility.edge_tolerance_mm above it, the month is published."""
    months.config["months"] = [6]
    for path in months.root.glob("sample/**/etasw_202006.tif"):
        corner = Chip.parse(path.parts[-3])
        with rasterio.open(path) as source:
            profile, values = source.profile, source.read(1)
        with rasterio.open(path, "w", **profile) as target:  # a checkerboard 0.01 mm apart
            target.write(values + 0.01 * ((corner.north + corner.west) // 20 % 2), 1)
    result = months.snakemake("--keep-going")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("etm error")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(
        f"etm error: tile {TILE6} etasw 2020-06: 40 of its 40 overlaps between neighbouring "
        "chips disagree (values up to 0.01 mm apart, against plausibility.edge_tolerance_mm "
        "0.001)"
    ), errors[0]
    months.config["plausibility"] = {"edge_tolerance_mm": 0.02}
    assert months.snakemake().returncode == 0
    assert months.published() == months.expected_cogs()
