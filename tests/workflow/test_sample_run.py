"""The demo: the bundled sample through the real snakemake CLI with config/sample.yaml."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from conftest import DEMO_REPORTS
from rio_cogeo.cogeo import cog_validate

OUTPUT = Path("sample/ws-enduser/USA/demo")
OUTPUT_CATALOG = Path("catalog.json")
COLLECTIONS = (Path("etasw/collection.json"), Path("netet/collection.json"))


def test_every_cog_is_published_valid_and_nothing_else(demo):
    published = sorted(p.relative_to(demo / OUTPUT) for p in (demo / OUTPUT).rglob("*"))
    files = [p for p in published if (demo / OUTPUT / p).is_file()]
    assert not [p for p in files if p.name.startswith(".")]
    cogs = [p for p in files if p.suffix == ".tif"]
    # Per product: 12 months and the year (annual: true), for 2 tiles and the region.
    assert len(cogs) == 2 * (12 + 1) * 3
    # Beside each COG its STAC Item, beside each region COG its quicklook; then the
    # catalog and one collection per product.
    assert {p.with_suffix(".json") for p in cogs} | {OUTPUT_CATALOG, *COLLECTIONS} == {
        p for p in files if p.suffix == ".json"
    }
    assert {p.with_suffix(".png") for p in cogs if p.parts[0] == "mosaic"} == {
        p for p in files if p.suffix == ".png"
    }
    for path in cogs:
        valid, errors, warnings = cog_validate(str(demo / OUTPUT / path), quiet=True)
        assert valid and not warnings, (path, errors, warnings)
        with rasterio.open(demo / OUTPUT / path) as cog:
            assert cog.dtypes == ("float32",)
            assert np.isnan(cog.nodata)
            assert cog.block_shapes == [(512, 512)]
            assert cog.crs.to_epsg() == 4326
            structure = cog.tags(ns="IMAGE_STRUCTURE")
            assert structure["COMPRESSION"] == "ZSTD" and structure["PREDICTOR"] == "3"
            assert {"STATISTICS_MINIMUM", "STATISTICS_MAXIMUM", "STATISTICS_MEAN"} <= set(
                cog.tags(1)
            )
    assert "0 missing" in (demo / DEMO_REPORTS / "verifier.txt").read_text()


def pixel_offset(outer, inner) -> tuple[int, int]:
    """Whole-pixel offset of ``inner``'s origin in ``outer``'s grid; fails if not whole."""
    col = (inner.c - outer.c) / outer.a
    row = (inner.f - outer.f) / outer.e
    assert abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6, (col, row)
    return round(row), round(col)


def window(cog_path, transform, shape) -> np.ndarray:
    with rasterio.open(cog_path) as cog:
        row, col = pixel_offset(cog.transform, transform)
        return cog.read(1, window=rasterio.windows.Window(col, row, shape[1], shape[0]))


def test_every_chip_equals_its_window_of_the_tile_cog(demo):
    # Not a glob on "etasw*": that would take the etasw5 decoys too.
    chips = sorted(
        path
        for product in ("etasw", "netet")
        for path in (demo / "sample" / "ws-out").rglob(f"chip*/2020/{product}_2020??.tif")
    )
    assert len(chips) == 2 * 25 * 2 * 12
    for chip_path in chips:
        tile = chip_path.parts[-4]
        product, yyyymm = chip_path.stem.split("_")
        cog = demo / OUTPUT / "tiles" / tile / product / "2020" / chip_path.name
        with rasterio.open(chip_path) as chip:
            values, transform = chip.read(1), chip.transform
        mosaic = window(cog, transform, values.shape)
        assert np.array_equal(np.isnan(mosaic), np.isnan(values)), chip_path
        np.testing.assert_allclose(mosaic, values, rtol=1e-6, err_msg=str(chip_path))


def test_region_cog_is_the_union_of_the_tile_cogs(demo):
    for region_path in sorted((demo / OUTPUT / "mosaic").rglob("*.tif")):
        product = region_path.parts[-3]
        covered = None
        with rasterio.open(region_path) as region:
            full = region.read(1)
            covered = np.zeros(full.shape, dtype=bool)
            for tile_path in sorted(
                (demo / OUTPUT / "tiles").glob(f"*/{product}/2020/{region_path.name}")
            ):
                with rasterio.open(tile_path) as tile:
                    row, col = pixel_offset(region.transform, tile.transform)
                    part = full[row : row + tile.height, col : col + tile.width]
                    assert np.array_equal(part, tile.read(1), equal_nan=True), tile_path
                    covered[row : row + tile.height, col : col + tile.width] = True
        assert covered.all(), region_path


def test_overviews_average_without_overshoot(demo):
    # The exact 2x2 NaN-aware mean is checked in tests/unit/test_cog.py on even sizes; the
    # region here is 963 pixels wide, so GDAL's overview pixels are not exact 2x2 blocks.
    with rasterio.open(demo / OUTPUT / "mosaic" / "etasw" / "2020" / "etasw_202007.tif") as cog:
        full = cog.read(1)
        assert cog.overviews(1) == [2]
        overview = cog.read(1, out_shape=(cog.height // 2 + 1, cog.width // 2 + 1))
    assert np.nanmin(overview) >= np.nanmin(full) and np.nanmax(overview) <= np.nanmax(full)
    assert abs(np.nanmean(overview) / np.nanmean(full) - 1) < 0.005
