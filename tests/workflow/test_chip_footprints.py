"""Chips cut from the master lattice the model's ways are published at their place, through
the snakemake CLI: outward rounding (``rasterio.mask(crop=True)``, ``gdalwarp -tap``), nearest
and inward; a chip more than a pixel off its named square is refused with one line."""

from __future__ import annotations

import mutations
import pytest
import rasterio
from conftest import TILE6, Workspace, assert_chip_in_cog, generate

from etm.sample import MODEL_PIXEL, tile_chips

YEAR, MONTHS = 2020, (6, 7)
SHIFTED = "chip43.4N-102.8E"


def cut(tmp_path, rounding: str) -> Workspace:
    """Tile6's etasw of June and July, its chips cut with ``rounding``."""
    generate(tmp_path, products=("etasw",), years=(YEAR,), months=MONTHS, tiles=(TILE6,),
             rounding=rounding)  # fmt: skip
    workspace = Workspace(tmp_path)
    workspace.config.update(
        products=["etasw"], start_year=YEAR, end_year=YEAR, months=list(MONTHS),
        unmosaicked_inputs=[workspace.prefix(TILE6)], tiles={},
    )  # fmt: skip
    return workspace


@pytest.mark.parametrize(
    "rounding",
    ["outward", pytest.param("nearest", marks=pytest.mark.slow), "inward"],
)
def test_chips_cut_with_any_rounding_are_published_at_their_place(tmp_path, rounding):
    workspace = cut(tmp_path, rounding)
    result = workspace.snakemake()
    assert result.returncode == 0, result.stderr
    assert workspace.published() == workspace.expected_cogs()
    for chip in tile_chips(TILE6):
        for month in MONTHS:
            path = workspace.chip(TILE6, chip.name, "etasw", YEAR, month)
            assert_chip_in_cog(path, workspace.tile_cog(TILE6, "etasw", YEAR, month))


def test_a_chip_more_than_a_pixel_off_its_square_is_refused_with_one_line(tmp_path):
    workspace = cut(tmp_path, "outward")
    path = workspace.chip(TILE6, SHIFTED, "etasw", YEAR, 7)
    with rasterio.open(path) as chip:
        pixel = chip.transform.a
    assert pixel == pytest.approx(10 * MODEL_PIXEL)
    # Cut outward, its corner lies 0.7 pixel west and 0.3 north of its name's; two pixels
    # further east, on the lattice, its west edge is 1.3 pixels inside its square.
    mutations.shifted(path, 2 * pixel)
    result = workspace.snakemake("--keep-going")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("etm error")]
    relative = path.relative_to(workspace.root)
    assert errors == [
        f"etm error: chip {relative}: its upper-left corner is at (-102.7739, 43.4063), "
        "1.3 pixels from its name's corner (-102.8000, 43.4000): it is another file, not this "
        "chip's"
    ], result.stderr
    assert workspace.published() == workspace.expected_cogs({(TILE6, "etasw", YEAR, 7)})
