"""The demo (the bundled sample through the real snakemake CLI with config/sample.yaml),
and what end users and operators see: COGs, STAC catalog, quicklooks, heatmaps, report.

One module, so that pytest-xdist runs every test of the shared demo on one worker while
the other worker runs the rest."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from conftest import DEMO_REPORTS, TILE5, TILE6, snakemake_command
from matplotlib.image import imread
from playwright.sync_api import sync_playwright
from pystac.validation import validate_dict
from rio_cogeo.cogeo import cog_validate

from etm.report import COLOURS, MISSING, PRESENT, heatmap_cell

OUTPUT = Path("sample/ws-enduser/USA/demo")
OUTPUT_CATALOG = Path("catalog.json")
COLLECTIONS = (Path("etasw/collection.json"), Path("netet/collection.json"))
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


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


def stac_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.json") if p.is_file())


def test_stac_catalog_validates_and_every_link_resolves(demo):
    output = demo / OUTPUT
    catalog = pystac.Catalog.from_file(str(output / "catalog.json"))
    collections = {c.id: c for c in catalog.get_collections()}
    assert set(collections) == {"etasw", "netet"}
    items = [item for c in collections.values() for item in c.get_items()]
    cogs = sorted(output.rglob("*.tif"))
    # One Item per published COG, each beside its COG.
    assert sorted(Path(i.get_self_href()).with_suffix(".tif") for i in items) == cogs
    for path in stac_files(output):
        document = json.loads(path.read_text())
        # Core schemas ship with pystac; see test_extension_schemas_when_reachable.
        validate_dict(document, href=str(path), extensions=[])
        targets = [link["href"] for link in document["links"]]
        targets += [asset["href"] for asset in document.get("assets", {}).values()]
        for href in targets:
            assert not href.startswith(("/", "http")), (path, href)  # relative: portable
            assert (path.parent / href).resolve().is_file(), (path, href)
    for collection in collections.values():
        assert collection.license == "other"
        assert "Unit: mm" in collection.description
        assert collection.extent.temporal.intervals[0][0].isoformat() == "2020-01-01T00:00:00+00:00"


def test_items_describe_their_cog_for_end_users(demo):
    output = demo / OUTPUT
    month = json.loads(
        (output / "tiles" / TILE6 / "etasw" / "2020" / "etasw_202002.json").read_text()
    )
    year = json.loads((output / "mosaic" / "netet" / "2020" / "netet_2020.json").read_text())
    assert month["properties"]["start_datetime"] == "2020-02-01T00:00:00Z"
    assert month["properties"]["end_datetime"] == "2020-02-29T23:59:59Z"  # a leap year
    assert month["properties"]["datetime"] is None
    assert year["properties"]["start_datetime"] == "2020-01-01T00:00:00Z"
    assert year["properties"]["end_datetime"] == "2020-12-31T23:59:59Z"
    assert year["properties"]["etm:aggregation"] == "sum"
    assert year["assets"]["thumbnail"]["href"] == "./netet_2020.png"
    assert "thumbnail" not in month["assets"]
    for item, cog in ((month, output / "tiles" / TILE6 / "etasw" / "2020" / "etasw_202002.tif"),
                      (year, output / "mosaic" / "netet" / "2020" / "netet_2020.tif")):  # fmt: skip
        assert any("projection" in e for e in item["stac_extensions"])
        assert any("raster" in e for e in item["stac_extensions"])
        assert item["properties"]["proj:epsg"] == 4326
        data = item["assets"]["data"]
        assert data["type"] == COG_MEDIA_TYPE and data["roles"] == ["data"]
        band = data["raster:bands"][0]
        assert (band["nodata"], band["data_type"], band["unit"]) == ("nan", "float32", "mm")
        with rasterio.open(cog) as source:
            values = source.read(1)
            assert item["bbox"] == pytest.approx(list(source.bounds), abs=1e-9)
        stats = band["statistics"]
        assert stats["minimum"] == pytest.approx(float(np.nanmin(values)))
        assert stats["maximum"] == pytest.approx(float(np.nanmax(values)))
        assert stats["mean"] == pytest.approx(float(np.nanmean(values)), rel=1e-6)


def test_extension_schemas_when_reachable(demo):
    """The proj and raster extension schemas are fetched from their URLs: no package ships them."""
    item = json.loads(
        (demo / OUTPUT / "mosaic" / "etasw" / "2020" / "etasw_202007.json").read_text()
    )
    try:
        for url in item["stac_extensions"]:
            urllib.request.urlopen(url, timeout=5).close()
    except OSError as error:
        pytest.skip(f"extension schemas not reachable offline ({error}); core schemas validated")
    validate_dict(item)


def test_quicklooks_are_transparent_where_nan_and_not_blank(demo):
    pngs = sorted((demo / OUTPUT / "mosaic").rglob("*.png"))
    assert len(pngs) == 2 * 13
    for png in pngs:
        with rasterio.open(png.with_suffix(".tif")) as cog:
            width, height = cog.width, cog.height
        pixels = imread(png)
        # The map (the 963 x 481 mosaic at most 800 wide: halved), title and legend.
        assert width // 2 < pixels.shape[1] < width // 2 + 300, png
        assert height // 2 < pixels.shape[0] < height // 2 + 150, png
        opaque = pixels[..., 3] > 0
        assert (~opaque).any(), png  # NaN (and margins) transparent
        assert pixels[opaque][:, :3].std() > 0.05, png  # not one flat colour


def test_annual_sums_equal_the_sum_of_the_monthly_cogs(demo):
    for folder in (f"tiles/{TILE5}", f"tiles/{TILE6}", "mosaic"):
        for product in ("etasw", "netet"):
            where = demo / OUTPUT / folder / product / "2020"
            months = []
            for month in range(1, 13):
                with rasterio.open(where / f"{product}_2020{month:02d}.tif") as cog:
                    months.append(cog.read(1).astype(np.float64))
            with rasterio.open(where / f"{product}_2020.tif") as cog:
                year = cog.read(1)
            expected = np.sum(months, axis=0)  # NaN where any month is NaN
            assert np.array_equal(np.isnan(year), np.isnan(expected)), where
            np.testing.assert_allclose(year, expected, rtol=2e-7, err_msg=str(where))


def cell_colour(pixels: np.ndarray, panel: int, row: int, column: int, chips: int) -> str:
    x, y = heatmap_cell(panel, row, column, chips)
    red, green, blue = (pixels[y, x, :3] * 255).round().astype(int)
    return f"#{red:02x}{green:02x}{blue:02x}"


def test_heatmaps_mark_exactly_the_removed_chips_and_unpublished_months_have_no_item(workspace):
    removed = [
        (TILE6, "chip45.4N-104.8E", "netet", 2021, 7),
        (TILE5, "chip39.4N-112.8E", "etasw", 2020, 7),
    ]
    for tile, chip, product, year, month in removed:
        workspace.chip(tile, chip, product, year, month).unlink()
    refused = workspace.snakemake("-n")
    assert refused.returncode == 1
    # The run is refused, but the heatmaps were drawn for the operator.
    assert (workspace.reports / "heatmaps" / f"{TILE6}.png").is_file()
    workspace.config["missing_chips"] = "skip"
    result = workspace.snakemake()
    assert result.returncode == 0, result.stderr
    snapshot = json.loads((workspace.reports / "verification.json").read_text())
    periods = snapshot["periods"]
    for tile in (TILE5, TILE6):
        chips = snapshot["tiles"][tile]["chips"]
        pixels = imread(workspace.reports / "heatmaps" / f"{tile}.png")
        for panel, product in enumerate(("etasw", "netet")):
            for row, chip in enumerate(chips):
                for column, period in enumerate(periods):
                    year, month = int(period[:4]), int(period[5:])
                    status = MISSING if (tile, chip, product, year, month) in removed else PRESENT
                    assert cell_colour(pixels, panel, row, column, len(chips)) == COLOURS[status], (
                        tile, chip, product, period,
                    )  # fmt: skip
    output = workspace.output
    assert not (output / "tiles" / TILE6 / "netet" / "2021" / "netet_202107.json").exists()
    assert not (output / "mosaic" / "netet" / "2021" / "netet_202107.json").exists()
    assert (output / "tiles" / TILE5 / "netet" / "2021" / "netet_202107.json").exists()
    catalog = pystac.Catalog.from_file(str(output / "catalog.json"))
    ids = {item.id for item in catalog.get_items(recursive=True)}
    assert f"{TILE6}_netet_202107" not in ids and f"{TILE5}_netet_202107" in ids
    assert len(ids) == len(workspace.expected_cogs({r[0:1] + r[2:] for r in removed}))


def test_html_report_shows_the_heatmap_in_a_browser(demo):
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (make test installs it)"
    report = demo / "report.html"
    result = subprocess.run(
        snakemake_command("--report", str(report), configfile="sample.yaml"),
        cwd=demo,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    heatmap = demo / DEMO_REPORTS / "heatmaps" / f"{TILE6}.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(report.as_uri())
        assert page.get_by_text("Quicklooks", exact=True).is_visible()
        page.get_by_text("Completeness", exact=True).click()
        page.locator("tr", has_text=TILE6).locator("a[iconname=eye]").click()
        image = page.locator(f'img[src*="filename={TILE6}.png"]')
        image.wait_for(timeout=10_000)
        rendered = image.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
        browser.close()
    assert rendered == [True, imread(heatmap).shape[1], imread(heatmap).shape[0]]
