"""The demo (the bundled sample through the real snakemake CLI with config/sample.yaml),
and what end users and operators see: COGs, STAC catalog, quicklooks, heatmaps, report.

One module, so that pytest-xdist runs every test of the shared demo on one worker while
the other worker runs the rest."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
from conftest import (
    DEMO_OUTPUT,
    JULY,
    REPO,
    SNAKEMAKE,
    TILE5,
    TILE6,
    YEARS,
    kept_folder,
    snakemake_command,
)
from matplotlib.image import imread
from playwright.sync_api import sync_playwright
from rangeserver import certificate, served_bytes, serving
from rio_cogeo.cogeo import cog_validate
from stacschemas import errors

from etm.plan import PERIODS
from etm.provenance import LEDGER, digest
from etm.quicklook import drawn_with
from etm.timeseries import polygon_series
from etm.web import PAGE, page_files

OUTPUT = Path("sample/ws-enduser/USA/demo")
OUTPUT_CATALOG = Path("catalog.json")
KINDS = ("monthly", "yearly", "tiles-monthly", "tiles-yearly")
COLLECTIONS = [f"{product}-{kind}" for product in ("etasw", "netet") for kind in KINDS]
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
REGION_COLLECTIONS = [c for c in COLLECTIONS if "-tiles-" not in c]


def test_every_cog_is_published_valid_and_nothing_else(demo):
    published = sorted(p.relative_to(demo / OUTPUT) for p in (demo / OUTPUT).rglob("*"))
    files = [p for p in published if (demo / OUTPUT / p).is_file()]
    # series_store: true (config/sample.yaml): one Zarr store per product.
    stores = {p.parts[:2] for p in files if p.parts[0] == "series"}
    assert stores == {("series", "etasw.zarr"), ("series", "netet.zarr")}
    files = [p for p in files if p.parts[0] != "series"]
    # No partial file, and the ledger of what each tile-month was built from.
    assert [p for p in files if p.name.startswith(".")] == [Path(LEDGER)]
    files.remove(Path(LEDGER))
    cogs = [p for p in files if p.suffix == ".tif"]
    # Per product: 12 months and the year (annual: true), for 2 tiles and the region.
    assert len(cogs) == 2 * (12 + 1) * 3
    # Beside each COG its STAC Item, beside each region COG its quicklook; then the
    # catalog, and one Collection per product and kind with its indexes.
    collections = {Path(c) / "collection.json" for c in COLLECTIONS}
    periods = {Path(c) / PERIODS for c in REGION_COLLECTIONS}
    page = {Path(name) for name in page_files(str(REPO))}
    assert {p.with_suffix(".json") for p in cogs} | {OUTPUT_CATALOG, *collections} | periods | {
        p
        for p in page
        if p.suffix == ".json"  # the map page's boundaries
    } == {p for p in files if p.suffix == ".json"}
    assert {p for p in files if p.suffix not in (".tif", ".json", ".png")} == {
        *(p for p in page if p.suffix != ".json"),
        *(Path(c) / name for c in COLLECTIONS for name in ("items.ndjson", "items.parquet")),
    }  # fmt: skip
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
            # What QGIS and gdalinfo show: the band's meaning and unit, and provenance.
            product, period = path.stem.split("_")
            place = f"tile {path.parts[1]}" if path.parts[0] == "tiles" else "region"
            label = f"{period[:4]}-{period[4:]}" if len(period) == 6 else period
            assert cog.descriptions[0].endswith(f"({product}), {place}, {label}"), path
            assert cog.units == ("mm",)
            tags = cog.tags()
            assert (tags["ETM_PRODUCT"], tags["ETM_PERIOD"]) == (product, period)
            assert tags["ETM_AGGREGATION"] == ("month" if len(period) == 6 else "sum")
            assert (
                tags["ETM_VERSION"]
                and "sample/ws-out/USA/Run08_18_2021/" in (tags["ETM_RUN_PREFIXES"])
            )
            # Every source it was built from, with its identity, and their digest.
            sources = json.loads(tags["ETM_SOURCES"])
            assert tags["ETM_SOURCES_DIGEST"] == digest(map(tuple, sources))
            if path.parts[0] == "tiles" and len(period) == 6:
                assert len(sources) == 25 and all(i.startswith("stat:") for _, i in sources)
            else:
                assert all(i.startswith("digest:") and len(i) == 71 for _, i in sources)
    assert "0 missing" in (kept_folder(demo, "reports", DEMO_OUTPUT) / "verifier.txt").read_text()


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
    """Every STAC document under the output prefix: not the map page's boundaries nor its
    lists of periods, nor the series store's Zarr metadata."""
    return sorted(
        p
        for p in root.rglob("*.json")
        if p.is_file()
        and p.name not in {*PAGE, PERIODS}
        and "series" not in p.relative_to(root).parts
    )


def test_stac_catalog_validates_and_every_link_resolves(demo):
    output = demo / OUTPUT
    catalog = pystac.Catalog.from_file(str(output / "catalog.json"))
    collections = {c.id: c for c in catalog.get_collections()}
    # The region's months first: what most users want.
    assert list(collections) == COLLECTIONS
    items = [item for c in collections.values() for item in c.get_items()]
    for collection in collections.values():  # one kind each, never mixed
        kinds = {
            (item.properties["etm:product"], item.properties["etm:place"] == "region",
             item.properties["etm:period"], item.properties.get("etm:aggregation"))
            for item in collection.get_items()
        }  # fmt: skip
        product, kind = collection.id.split("-", 1)
        region, yearly = not kind.startswith("tiles"), kind.endswith("yearly")
        expected = ("year", "sum") if yearly else ("month", None)
        assert kinds == {(product, region, *expected)}, collection.id
        cog = "year" if yearly else "data"
        assert set(collection.item_assets) == ({cog, "thumbnail"} if region else {cog})
    cogs = sorted(output.rglob("*.tif"))
    # One Item per published COG, each beside its COG.
    assert sorted(Path(i.get_self_href()).with_suffix(".tif") for i in items) == cogs
    documents = stac_files(output)
    assert len(documents) == 1 + len(COLLECTIONS) + len(cogs)
    for path in documents:
        document = json.loads(path.read_text())
        # The official schemas of its STAC version and of every extension it declares.
        assert errors(document) == [], path
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
    assert month["properties"]["datetime"] == "2020-02-01T00:00:00Z"
    assert year["properties"]["start_datetime"] == "2020-01-01T00:00:00Z"
    assert year["properties"]["end_datetime"] == "2020-12-31T23:59:59Z"
    assert year["properties"]["datetime"] is None  # never to be taken for its January
    # What a user filters on.
    assert {k: v for k, v in month["properties"].items() if k.startswith("etm:")} == {
        "etm:product": "etasw", "etm:place": TILE6, "etm:period": "month",
    }  # fmt: skip
    assert {k: v for k, v in year["properties"].items() if k.startswith("etm:")} == {
        "etm:product": "netet", "etm:place": "region", "etm:period": "year",
        "etm:aggregation": "sum",
    }  # fmt: skip
    assert year["assets"]["thumbnail"]["href"] == "./netet_2020.png"
    assert "thumbnail" not in month["assets"]
    for item, cog, key in (
        (month, output / "tiles" / TILE6 / "etasw" / "2020" / "etasw_202002.tif", "data"),
        (year, output / "mosaic" / "netet" / "2020" / "netet_2020.tif", "year"),
    ):
        assert item["stac_extensions"] == [
            "https://stac-extensions.github.io/projection/v1.2.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/file/v2.1.0/schema.json",
        ]
        # proj:code for readers of projection v2; proj:epsg for stackstac 0.5.
        assert item["properties"]["proj:code"] == "EPSG:4326"
        assert item["properties"]["proj:epsg"] == 4326
        data = item["assets"][key]
        assert data["file:size"] == cog.stat().st_size
        assert data["file:checksum"] == "1220" + hashlib.sha256(cog.read_bytes()).hexdigest()
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


def item_files(collection: Path) -> list[Path]:
    """A Collection's Items, as its links name them."""
    links = json.loads(collection.read_text())["links"]
    return [(collection.parent / link["href"]).resolve() for link in links if link["rel"] == "item"]


def cog_series(cogs: list[Path]) -> tuple[np.ndarray, rasterio.Affine]:
    """COGs stacked in their order, and their grid (the same for all)."""
    arrays, grids = [], set()
    for path in cogs:
        with rasterio.open(path) as cog:
            arrays.append(cog.read(1))
            grids.add((cog.transform, cog.shape))
    assert len(grids) == 1
    return np.stack(arrays), grids.pop()[0]


def published_documents(collection: Path) -> list[dict]:
    """A Collection's Items as published (JSON), their hrefs made absolute as URLs would be."""
    documents = []
    for file in item_files(collection):
        document = json.loads(file.read_text())
        for asset in document["assets"].values():
            asset["href"] = str(file.parent / asset["href"])
        documents.append(document)
    return documents


# odc-geo 0.5.3 uses what affine 3 and shapely 2.1 deprecate.
@pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")
@pytest.mark.filterwarnings("ignore:The 'shapely.ops.transform:DeprecationWarning")
@pytest.mark.parametrize("collection", [*(f"etasw-{kind}" for kind in KINDS), "netet-yearly"])
def test_odc_stac_and_stackstac_load_a_collection_on_the_cogs_grid(
    demo, collection, tmp_path, monkeypatch
):
    """As end users load a whole Collection, tiles included: the region's COGs, exactly;
    from its Items, or its index's lines or rows as they are, with no base URL."""
    import odc.stac
    import stackstac

    path = demo / OUTPUT / collection / "collection.json"
    items = list(pystac.Collection.from_file(str(path)).get_items())
    product, yearly = collection.split("-")[0], collection.endswith("yearly")
    key = "year" if yearly else "data"
    periods = ["2020"] if yearly else [f"2020{month:02d}" for month in range(1, 13)]
    region = demo / OUTPUT / "mosaic" / product / "2020"
    expected, transform = cog_series([region / f"{product}_{p}.tif" for p in periods])
    starts = np.array([f"{p[:4]}-{p[4:] or '01'}-01" for p in periods], "datetime64[ns]")

    # The Items as the Collection links them, and as its indexes hold them, read from
    # elsewhere: their hrefs resolve against nothing.
    lines, rows = index_lines(path.parent), index_rows(path.parent)
    monkeypatch.chdir(tmp_path)
    assert (
        sorted(i["id"] for i in lines)
        == sorted(i["id"] for i in rows)
        == sorted(i.id for i in items)
    )
    for loaded_items in (items, pystac.ItemCollection(lines), pystac.ItemCollection(rows)):
        # odc-stac snaps its grid to multiples of the resolution unless told "floating":
        # with no argument, a load of several tiles is 0.66 pixel off their lattice.
        loaded = odc.stac.load(loaded_items, anchor="floating")
        assert loaded.odc.geobox.crs.epsg == 4326
        assert loaded.odc.geobox.affine == transform  # the COGs' own grid: no resampling
        assert list(loaded.data_vars) == [key]
        np.testing.assert_array_equal(loaded.time.values, starts)
        np.testing.assert_array_equal(loaded[key].values, expected)

    # stackstac 0.5 knows only proj:epsg, which pystac removes when it reads an Item: it is
    # given the Items as JSON (as published, or the index's lines or rows). Its default
    # snaps bounds to multiples of the resolution, which moves the model's lattice by a
    # fraction of a pixel (a resampling): snap_bounds=False keeps the COGs' grid. Its time
    # is an Item's datetime, null for a year: each Item's start instead; a period's tiles
    # mosaicked.
    for documents in (published_documents(path), lines, rows):
        stacked = stackstac.stack(documents, snap_bounds=False, sortby_date=False)
        assert list(stacked.band.values) == [key]  # the COG, not the quicklook
        assert stacked.attrs["crs"] == "epsg:4326"
        assert stacked.attrs["transform"] == transform
        stacked = stacked.assign_coords(time=[d["properties"]["start_datetime"] for d in documents])
        stacked["time"] = pd.to_datetime(stacked.time.values).tz_localize(None)
        periods_loaded = stacked.groupby("time").map(stackstac.mosaic)
        np.testing.assert_array_equal(periods_loaded.time.values, starts)
        np.testing.assert_array_equal(periods_loaded.sel(band=key).values, expected)


def index_lines(folder: Path) -> list[dict]:
    """A Collection's ``items.ndjson``, as end users read it: one Item a line."""
    return [json.loads(line) for line in (folder / "items.ndjson").read_text().splitlines()]


def index_rows(folder: Path) -> list[dict]:
    """A Collection's ``items.parquet``, as end users read it with stac-geoparquet."""
    import pyarrow.parquet
    import stac_geoparquet.arrow

    table = pyarrow.parquet.read_table(folder / "items.parquet")
    return list(stac_geoparquet.arrow.stac_table_to_items(table))


@pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")
@pytest.mark.filterwarnings("ignore:The 'shapely.ops.transform:DeprecationWarning")
def test_months_and_years_loaded_together_are_kept_apart_or_refused(demo):
    """A year is never taken for its January: odc-stac refuses the mix; stackstac keeps
    the years in their own band, at no month's time."""
    import odc.stac
    import stackstac

    collections = [demo / OUTPUT / f"etasw-{kind}" / "collection.json" for kind in KINDS[:2]]
    items = [i for c in collections for i in pystac.Collection.from_file(str(c)).get_items()]
    with pytest.raises(ValueError, match="No such band/alias"):
        odc.stac.load(items, anchor="floating")
    stacked = stackstac.stack(
        [d for c in collections for d in published_documents(c)], snap_bounds=False
    )
    assert sorted(stacked.band.values) == ["data", "year"]
    year = stacked.sel(band="year").isel(time=np.isnat(stacked.time.values))
    assert list(year.id.values) == ["region_etasw_2020"]
    months = stacked.isel(time=~np.isnat(stacked.time.values)).sel(band="year")
    assert np.isnan(months.values).all()  # no month holds the year's values


def test_each_collection_indexes_its_items_as_json_lines_and_geoparquet(demo):
    output = demo / OUTPUT
    items = {
        path: json.loads(path.read_text())
        for path in stac_files(output)
        if json.loads(path.read_text())["type"] == "Feature"
    }
    by_id = {item["id"]: (path, item) for path, item in items.items()}
    indexed = []
    for collection in COLLECTIONS:
        folder = output / collection
        lines = index_lines(folder)
        parquet = {row["id"]: row for row in index_rows(folder)}
        assert sorted(parquet) == sorted(line["id"] for line in lines)
        for line in lines:
            path, item = by_id[line["id"]]
            assert line["collection"] == collection
            assert errors(line) == []
            # As published, but every href absolute: the local output prefix's absolute
            # path (no public_url), and a self link.
            assert {k: v for k, v in line.items() if k not in ("links", "assets")} == {
                k: v for k, v in item.items() if k not in ("links", "assets")
            }
            self, *links = line["links"]
            assert self == {"rel": "self", "href": str(path), "type": "application/json"}
            for key, asset in line["assets"].items():
                assert asset == {**item["assets"][key], "href": asset["href"]}
                assert asset["href"] == str((path.parent / item["assets"][key]["href"]).resolve())
            for link, own in zip(links, item["links"], strict=True):
                assert link == {**own, "href": link["href"]}
                assert link["href"] == str((path.parent / own["href"]).resolve())
            row = parquet[line["id"]]
            assert row["assets"] == line["assets"] and row["links"] == line["links"]
            assert row["bbox"] == line["bbox"] and row["geometry"] == line["geometry"]
            assert row["properties"]["etm:place"] == line["properties"]["etm:place"]
        indexed += lines
        # The Collection names its indexes; a region one its periods, what the map page reads.
        assets = json.loads((folder / "collection.json").read_text())["assets"]
        assert {a["href"]: a["type"] for a in assets.values()} == {
            "./items.ndjson": "application/x-ndjson",
            "./items.parquet": "application/vnd.apache.parquet",
            **({f"./{PERIODS}": "application/json"} if collection in REGION_COLLECTIONS else {}),
        }
        if collection in REGION_COLLECTIONS:
            by_start = sorted(lines, key=lambda line: line["properties"]["start_datetime"])
            periods = json.loads((folder / PERIODS).read_text())["periods"]
            # Each COG relative to the list, so that the page reads it wherever it is served.
            assert [(p["period"], p["cog"]) for p in periods] == [
                (
                    line["properties"]["start_datetime"][: 7 if "monthly" in collection else 4],
                    os.path.relpath(
                        line["assets"]["data" if "monthly" in collection else "year"]["href"],
                        folder.resolve(),
                    ),
                )
                for line in by_start
            ]
            assert all(p["minimum"] <= p["maximum"] for p in periods)
    assert sorted(line["id"] for line in indexed) == sorted(by_id)


@pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")
@pytest.mark.filterwarnings("ignore:The 'shapely.ops.transform:DeprecationWarning")
def test_with_a_public_url_the_index_names_every_file_under_it_and_loads_from_there(
    workspace, tmp_path, monkeypatch
):
    """public_url: a static host's address of the output prefix (here a loopback HTTP
    server of it). The indexes name every file under it, and odc-stac and stackstac load
    their lines from there as they are; the catalog's own JSON stays relative."""
    import odc.stac
    import stackstac

    workspace.output.mkdir()
    with serving(str(workspace.output)) as (url, requests):
        workspace.config["public_url"] = url  # with a trailing slash, which is left out
        result = workspace.snakemake()
        assert result.returncode == 0, result.stderr
        base = url.rstrip("/")
        folder = workspace.output / "etasw-monthly"
        lines, rows = index_lines(folder), index_rows(folder)
        assert len(lines) == len(YEARS)
        for row, line in zip(rows, lines, strict=True):
            assert (row["links"], row["assets"]) == (line["links"], line["assets"])
        for line in lines:
            assert errors(line) == []
            year = line["properties"]["start_datetime"][:4]
            name = f"mosaic/etasw/{year}/etasw_{year}{JULY:02d}"
            assert {link["rel"]: link["href"] for link in line["links"]} == {
                "self": f"{base}/{name}.json",
                "root": f"{base}/catalog.json",
                "parent": f"{base}/etasw-monthly/collection.json",
                "collection": f"{base}/etasw-monthly/collection.json",
            }
            assert {a["href"] for a in line["assets"].values()} == {
                f"{base}/{name}.tif", f"{base}/{name}.png"
            }  # fmt: skip
        expected, transform = cog_series([workspace.region_cog("etasw", y, JULY) for y in YEARS])
        monkeypatch.chdir(tmp_path)  # nothing is read from the output folder by its path
        del requests[:]
        loaded = odc.stac.load(pystac.ItemCollection(lines), anchor="floating")
        assert loaded.odc.geobox.affine == transform
        np.testing.assert_array_equal(loaded["data"].values, expected)
        stacked = stackstac.stack(lines, assets=["data"], snap_bounds=False).sortby("time")
        assert stacked.attrs["transform"] == transform
        np.testing.assert_array_equal(stacked.sel(band="data").values, expected)
        # Read from the host: the COGs by range requests.
        cogs = [r for r in requests if r.startswith("GET /mosaic/etasw/") and ".tif" in r]
        assert cogs and all("bytes=" in r for r in cogs), requests
    catalog = json.loads((workspace.output / "catalog.json").read_text())
    collection = json.loads((folder / "collection.json").read_text())
    item = json.loads((workspace.output / f"{name}.json").read_text())
    for document in (catalog, collection, item):
        hrefs = [link["href"] for link in document["links"] if link["rel"] != "license"]
        hrefs += [asset["href"] for asset in document.get("assets", {}).values()]
        assert all(href.startswith(".") for href in hrefs), hrefs
    # A public_url set or changed later: the indexes are written with the catalog, which
    # the rerun trigger (mtime) does not redo for a setting; --forcerun does.
    workspace.config["public_url"] = "https://d111111abcdef8.cloudfront.net/USA/TBD"
    dry = workspace.snakemake("-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    result = workspace.snakemake("--forcerun", "stac_catalog")
    assert result.returncode == 0, result.stderr
    assert index_lines(folder)[0]["links"][1] == {
        "rel": "root",
        "href": "https://d111111abcdef8.cloudfront.net/USA/TBD/catalog.json",
        "type": "application/json",
    }


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


def test_quicklooks_share_one_scale_per_product_and_kind_fitted_to_the_archive(demo):
    scales = {}
    for png in sorted((demo / OUTPUT / "mosaic").rglob("*.png")):
        product, period = png.stem.split("_")
        with rasterio.open(png.with_suffix(".tif")) as cog:
            top = float(np.nanmax(cog.read(1)))
        scale, cog_digest = drawn_with(str(png))
        with rasterio.open(png.with_suffix(".tif")) as cog:
            assert cog_digest == cog.tags()["ETM_SOURCES_DIGEST"]
        scales.setdefault((product, len(period)), set()).add(float(scale))
        if len(period) == 4:  # a year's sum: its scale tops its maximum, not 12 months' scale
            assert top <= float(scale) <= 1.5 * top, png
    # Months compare: one scale for the 12 months of a product, another for its year.
    assert {key: len(tops) for key, tops in scales.items()} == {
        (product, length): 1 for product in ("etasw", "netet") for length in (4, 6)
    }
    assert scales[("etasw", 4)] == {1500} and scales[("etasw", 6)] == {200}


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
    heatmap = kept_folder(demo, "reports", DEMO_OUTPUT) / "heatmaps" / f"{TILE6}.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(report.as_uri())
        # It opens on the completeness summary: chip files per tile and product.
        summary = page.get_by_text("Chip files per tile and product")
        summary.wait_for(timeout=10_000)
        row = page.locator("tr", has_text=TILE6).filter(has_text="netet")
        assert row.locator("td").all_inner_texts() == [TILE6, "netet", "300", "300", "0", "0"]
        assert page.get_by_text("1200 chip files expected, 1200 found, 0 missing").is_visible()
        assert page.get_by_role("link", name="Quicklooks").is_visible()
        page.get_by_role("link", name="Completeness").click()
        page.locator("tr", has_text=TILE6).locator("a[iconname=eye]").click()
        image = page.locator(f'img[src*="filename={TILE6}.png"]')
        image.wait_for(timeout=10_000)
        rendered = image.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
        browser.close()
    assert rendered == [True, imread(heatmap).shape[1], imread(heatmap).shape[0]]


def map_pixels(page) -> np.ndarray:
    """The map's pixels as RGB, 0-255, from a screenshot of it."""
    png = page.locator("#map").screenshot()
    return (imread(io.BytesIO(png), format="png")[..., :3] * 255).round()


def coloured(pixels: np.ndarray) -> np.ndarray:
    """Where the colour ramp is drawn: not the grey background, lines or labels."""
    return pixels.max(axis=-1) - pixels.min(axis=-1) > 16


def data(requests: list[str]) -> list[str]:
    """The JSON the page read of the catalog and the series stores: not its own files."""
    return [r for r in requests if "json" in r and r.split(" ")[1].lstrip("/") not in PAGE]


def test_map_page_opens_on_what_its_first_map_needs(demo, browser):
    output = demo / OUTPUT
    with serving(str(output)) as (url, requests):
        page = opened(browser, url + "index.html")
        page.wait_for_function("document.body.dataset.rendered === 'etasw 2020-01'")
        page.wait_for_load_state("networkidle")
        assert not page.errors
    fetched = {r.split(" ")[1].lstrip("/") for r in requests}
    scripts = {name for name in page_files(str(REPO)) if name.endswith(".js")}
    # The states at once; the counties (842 KB) only zoomed in or looked for.
    assert "states.json" in fetched and "counties.json" not in fetched
    # Of the script, what the first map needs: not the polygon tool, nor the COG decoders
    # other than ZSTD's (the demo's).
    assert "map.js" in fetched and scripts - fetched
    assert not {
        name
        for name in fetched & scripts
        if name.startswith(("chunks/Draw-", "chunks/lerc-", "chunks/deflate-"))
    }
    # The page's files, the catalog and the month list: under 750 KB, where the whole
    # script and the counties made 1.6 MB; the first month's COG by ranges, less than it.
    cog = output / "mosaic/etasw/2020/etasw_202001.tif"
    ranges = [r for r in requests if ".tif " in r]
    assert all(r.startswith("GET /mosaic/etasw/2020/etasw_202001.tif bytes=") for r in ranges)
    assert sum(served_bytes(output, r) for r in ranges) < cog.stat().st_size
    assert sum(served_bytes(output, r) for r in requests if r not in ranges) < 750_000


def test_map_page_shows_the_months_and_a_pixel_series_equal_to_the_cogs(demo):
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (make test installs it)"
    with serving(str(demo / OUTPUT)) as (url, requests), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "index.html")
        page.wait_for_function("document.body.dataset.rendered === 'etasw 2020-01'")
        january = map_pixels(page)
        # The month slider: July is the seventh of the product's 12 region months.
        slide = "s => { s.value = 6; s.dispatchEvent(new Event('input')); }"
        page.locator("#month").evaluate(slide)
        page.wait_for_function("document.body.dataset.rendered === 'etasw 2020-07'")
        july = map_pixels(page)
        assert page.locator("#legend-high").inner_text().endswith(" mm")
        box = page.locator("#map").bounding_box()
        # Off the map's centre, which is the edge between the two tiles' pixels.
        page.mouse.click(box["x"] + box["width"] * 0.43, box["y"] + box["height"] * 0.57)
        page.wait_for_function("document.body.dataset.series")
        lon, lat = map(float, page.evaluate("document.body.dataset.point").split(","))
        rows = page.locator("#series-values tr").evaluate_all(
            "rows => rows.map(r => [r.dataset.period, r.dataset.value])"
        )
        points = page.locator("#series-chart circle").count()
        opening = data(requests)
        # Another product: its index is read when it is first shown.
        page.locator("#product").select_option("netet")
        page.wait_for_function("document.body.dataset.rendered === 'netet 2020-07'")
        browser.close()
    assert not errors
    # Most of the map shows the mosaic; July's colours are not January's.
    assert coloured(january).mean() > 0.3 and coloured(july).mean() > 0.3
    assert (np.abs(july - january).max(axis=-1) > 16).mean() > 0.2
    # The series is the region COGs' pixel at the clicked point, month by month.
    expected = []
    for month in range(1, 13):
        with rasterio.open(demo / OUTPUT / f"mosaic/etasw/2020/etasw_2020{month:02d}.tif") as cog:
            row, col = cog.index(lon, lat)
            value = cog.read(1, window=((row, row + 1), (col, col + 1)))[0, 0]
        expected.append([f"2020-{month:02d}", "" if np.isnan(value) else float(value)])
    assert [[period, value and float(value)] for period, value in rows] == expected
    assert points == sum(value != "" for _, value in expected) > 0
    # The catalog and the shown product's list of its months in one GET each, and the
    # click's series store's metadata; the other product's when chosen; the COGs only by
    # range requests.
    assert sorted(opening) == [
        "GET /catalog.json whole", f"GET /etasw-monthly/{PERIODS} whole",
        "GET /series/etasw.zarr/zarr.json whole",
    ]  # fmt: skip
    later = data(requests)[len(opening) :]
    assert sorted(later) == [
        f"GET /netet-monthly/{PERIODS} whole", "GET /series/netet.zarr/zarr.json whole",
    ]  # fmt: skip
    assert all("bytes=" in r for r in requests if ".tif" in r), requests


SERIES_CHIP = "sample/ws-out/USA/Run08_18_2021/run_r50.0_tile6/r50.0_tile6/chip43.4N-102.8E"


def etm_command(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real `etm` command line."""
    etm = Path(SNAKEMAKE).parent / "etm"
    return subprocess.run(
        [str(etm), *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


def pixel_centre(chip: Path, row: int, col: int) -> tuple[float, float]:
    with rasterio.open(chip) as source:
        return source.xy(row, col)


def test_timeseries_at_a_point_is_the_cogs_and_the_chips_pixel(demo):
    lon, lat = pixel_centre(demo / SERIES_CHIP / "2020" / "etasw_202007.tif", 10, 20)
    result = etm_command(
        "timeseries", "--product", "etasw", "--lon", str(lon), "--lat", str(lat),
        "--start", "2020-03", "--end", "2020-08", str(OUTPUT / "catalog.json"), cwd=demo,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "period,value_mm,cog"
    assert [line.split(",")[0] for line in lines[1:]] == [f"2020-{m:02d}" for m in range(3, 9)]
    for line, month in zip(lines[1:], range(3, 9), strict=True):
        value = float(line.split(",")[1])
        # Read from the series store; each value says which COG it is.
        assert line.split(",")[2] == f"mosaic/etasw/2020/etasw_2020{month:02d}.tif"
        with rasterio.open(
            demo / OUTPUT / "mosaic" / "etasw" / "2020" / f"etasw_2020{month:02d}.tif"
        ) as cog:
            (in_cog,) = next(cog.sample([(lon, lat)]))
        with rasterio.open(demo / SERIES_CHIP / "2020" / f"etasw_2020{month:02d}.tif") as chip:
            in_chip = chip.read(1)[10, 20]
        assert np.float32(value) == in_cog  # exactly: 9 significant digits
        assert value == pytest.approx(float(in_chip), rel=1e-6)  # float64 chip, float32 COG


def test_the_series_store_opens_in_xarray_as_the_region_cogs(demo):
    import xarray

    for product in ("etasw", "netet"):
        store = xarray.open_zarr(demo / OUTPUT / "series" / f"{product}.zarr")
        assert [str(t)[:7] for t in store.time.values] == [f"2020-{m:02d}" for m in range(1, 13)]
        for month in (1, 7, 12):
            path = demo / OUTPUT / "mosaic" / product / "2020" / f"{product}_2020{month:02d}.tif"
            with rasterio.open(path) as cog:
                values, (x, y) = cog.read(1), cog.xy(0, 0)
            assert (store.x.values[0], store.y.values[0]) == pytest.approx((x, y), abs=1e-9)
            np.testing.assert_array_equal(store[product].values[month - 1], values)


def test_timeseries_over_a_polygon_is_the_mean_of_the_pixels_it_holds(demo, tmp_path):
    # A rectangle on pixel edges, 4 x 3 pixels of the region COG.
    cog_path = demo / OUTPUT / "mosaic" / "netet" / "2020" / "netet_202005.tif"
    with rasterio.open(cog_path) as cog:
        t = cog.transform
        block = cog.read(1)[200:203, 300:304]
    west, north = t @ (300, 200)
    east, south = t @ (304, 203)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    field = tmp_path / "field.geojson"
    field.write_text(json.dumps({
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {},
                      "geometry": {"type": "Polygon", "coordinates": [ring]}}],
    }))  # fmt: skip
    result = etm_command(
        "timeseries", "--product", "netet", "--polygon", str(field), "--start", "2020-05",
        "--end", "2020-05", str(OUTPUT), cwd=demo,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header == "period,mean_mm,valid_pixels"
    period, mean, valid = row.split(",")
    assert period == "2020-05" and int(valid) == np.count_nonzero(~np.isnan(block))
    assert float(mean) == pytest.approx(float(np.nanmean(block)), rel=1e-5)


def test_timeseries_outside_the_region_is_one_line(demo):
    result = etm_command(
        "timeseries", "--product", "etasw", "--lon", "-60", "--lat", "42", str(OUTPUT), cwd=demo
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "etm error: point (-60.0, 42.0) is outside the published region (west -116.8207, "
        "south 37.3922, east -96.7806, north 47.4018)"
    ]


def test_timeseries_on_s3_reads_a_handful_of_ranges_per_month(demo, monkeypatch):
    from s3server import S3Server

    from etm.timeseries import point_series

    server = S3Server()
    try:
        server.client().create_bucket(Bucket="ws-enduser")
        server.upload_tree(demo / OUTPUT, "ws-enduser", "USA/demo")
        for name, value in server.environment.items():
            monkeypatch.setenv(name, value)
        lon, lat = pixel_centre(demo / SERIES_CHIP / "2020" / "etasw_202007.tif", 10, 20)
        server.reset_count()
        stored = point_series("s3://ws-enduser/USA/demo", "etasw", lon, lat)
        from_store = server.count()
        server.client().delete_object(
            Bucket="ws-enduser", Key="USA/demo/series/etasw.zarr/zarr.json"
        )
        server.reset_count()
        readings = point_series("s3://ws-enduser/USA/demo", "etasw", lon, lat)
        requests = server.count()
        cogs = [r for r in server.requests if r[0] == "GET" and r[1].endswith(".tif")]
    finally:
        server.stop()
    assert len(readings) == 12 and stored == readings
    with rasterio.open(demo / OUTPUT / "mosaic" / "etasw" / "2020" / "etasw_202007.tif") as cog:
        (july,) = next(cog.sample([(lon, lat)]))
    assert readings[6].value == float(july)
    # From the series store: its metadata, the shard's index, the point's chunk.
    assert dict(from_store) == {"GET": 3}, from_store
    # Without it: the store's metadata (absent), the product's indexes of its region's and
    # its tiles' months (one GET each), then per month the COG's header and the block of
    # the point.
    assert len(cogs) <= 3 * 12 and requests["GET"] == len(cogs) + 3, requests
    assert set(requests) <= {"GET", "HEAD"}, requests
    print(f"etm timeseries on S3, 12 months: {dict(from_store)}; from the COGs {dict(requests)}")


def test_timeseries_over_https_reads_ranges_as_from_a_static_host(demo, tmp_path, monkeypatch):
    from etm.timeseries import point_series

    cert, key = certificate(str(tmp_path))
    # The certificate is trusted as a user's own CA would be: by GDAL's curl and Python.
    monkeypatch.setenv("GDAL_CURL_CA_BUNDLE", cert)
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    lon, lat = pixel_centre(demo / SERIES_CHIP / "2020" / "etasw_202007.tif", 10, 20)
    local = point_series(str(demo / OUTPUT), "etasw", lon, lat)
    with serving(str(demo / OUTPUT), tls=(cert, key)) as (url, requests):
        assert url.startswith("https://")
        stored = point_series(url.rstrip("/"), "etasw", lon, lat)
    assert stored == local and len(stored) == 12
    # From the series store: its metadata whole, the shard's index, the point's chunk.
    assert [r.split(" ", 2)[::2] for r in requests] == [
        ["GET", "whole"],
        ["GET", f"bytes=-{32 * 32 * 16 + 4}"],
        ["GET", requests[2].split(" ")[-1]],
    ] and requests[2].startswith("GET /series/etasw.zarr/etasw/c/0/"), requests
    # Without it (a prefix published with series_store: false), from the COGs.
    for name in ("etasw-monthly", "etasw-tiles-monthly", "mosaic"):
        (tmp_path / name).symlink_to(demo / OUTPUT / name)
    with serving(str(tmp_path), tls=(cert, key)) as (url, requests):
        remote = point_series(url.rstrip("/"), "etasw", lon, lat)
    assert remote == local and len(remote) == 12
    # The product's indexes of its months whole; per month a HEAD (the COG's size), its
    # header and the point's block by range requests, never a whole COG.
    assert [r for r in requests if ".tif" not in r] == [
        "GET /series/etasw.zarr/zarr.json whole",
        "GET /etasw-monthly/items.parquet whole",
        "GET /etasw-tiles-monthly/items.parquet whole",
    ]
    cogs = [r for r in requests if r.startswith("GET") and ".tif" in r]
    assert 12 <= len(cogs) <= 3 * 12 and all("bytes=" in r for r in cogs), requests
    print(f"etm timeseries over HTTPS, 12 months: {len(requests)} requests, {len(cogs)} ranges")


MARKER = np.array([0xE4, 0x1A, 0x1C])


def region_value(demo: Path, product: str, period: str, lon: float, lat: float) -> float | str:
    """A region COG's pixel at a point, as the page's table holds it ('' for no data)."""
    year = period[:4]
    name = f"{product}_{period.replace('-', '')}.tif"
    with rasterio.open(demo / OUTPUT / "mosaic" / product / year / name) as cog:
        row, col = cog.index(lon, lat)
        value = cog.read(1, window=((row, row + 1), (col, col + 1)))[0, 0]
    return "" if np.isnan(value) else float(value)


def table(page) -> list[list]:
    rows = page.locator("#series-values tr").evaluate_all(
        "rows => rows.map(r => [r.dataset.period, r.dataset.value])"
    )
    return [[period, value and float(value)] for period, value in rows]


def hash_of(page) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(page.evaluate("location.hash").removeprefix("#")))


@pytest.fixture
def browser():
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (make test installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield browser
        browser.close()


def opened(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 720}, accept_downloads=True)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(url)
    return page


def test_map_page_marks_the_pixel_follows_the_product_and_links_to_the_view(demo, browser):
    with serving(str(demo / OUTPUT)) as (url, requests):
        page = opened(browser, url + "index.html")
        page.wait_for_function("document.body.dataset.rendered === 'etasw 2020-01'")
        before = map_pixels(page)
        box = page.locator("#map").bounding_box()
        at = (box["width"] * 0.43, box["height"] * 0.57)
        page.mouse.click(box["x"] + at[0], box["y"] + at[1])
        page.wait_for_function("(document.body.dataset.series || '').startsWith('etasw')")
        page.wait_for_function("document.body.dataset.marked")  # drawn on the map
        lon, lat = map(float, page.evaluate("document.body.dataset.point").split(","))
        etasw = table(page)
        # From the series store: its metadata, the shard's index, the pixel's chunk.
        store_reads = [r.split(" ")[1].split("/")[2] for r in requests if "/series/" in r]
        title = page.locator("#series-title").inner_text()
        after = map_pixels(page)
        # The chart's ticks: round values in mm, each month's initial, the year.
        y_ticks = page.locator("#series-chart .y-tick text").all_text_contents()
        x_ticks = page.locator("#series-chart .x-tick text").all_text_contents()
        years = page.locator("#series-chart .year-tick text").all_text_contents()
        with page.expect_download() as download:
            page.locator("#download").click()
        text = Path(download.value.path()).read_text()
        name = download.value.suggested_filename
        # Another product: the series follows it, at the same point.
        page.locator("#product").select_option("netet")
        page.wait_for_function("(document.body.dataset.series || '').startsWith('netet')")
        netet = table(page)
        page.locator("#month").evaluate(
            "s => { s.value = 6; s.dispatchEvent(new Event('input')); }"
        )
        page.wait_for_function("document.body.dataset.rendered === 'netet 2020-07'")
        link = page.url
        # The permalink opens on the same product, month, point and series.
        again = opened(browser, link)
        again.wait_for_function("document.body.dataset.rendered === 'netet 2020-07'")
        again.wait_for_function("(document.body.dataset.series || '').startsWith('netet')")
        restored = [again.locator("#product").input_value(), table(again)]
        assert not page.errors and not again.errors
    months = [f"2020-{month:02d}" for month in range(1, 13)]
    assert etasw == [[m, region_value(demo, "etasw", m, lon, lat)] for m in months]
    assert netet == [[m, region_value(demo, "netet", m, lon, lat)] for m in months] != etasw
    assert restored == ["netet", netet]
    # Where the click was: 108.79° W, not -108.79° E.
    assert title == f"etasw monthly at {lat:.4f}° N, {-lon:.4f}° W" and lon < 0 < lat
    # The marker: red, at the clicked pixel, not on the map before the click.
    red = (np.abs(after - MARKER).max(axis=-1) < 40).nonzero()
    assert not (np.abs(before - MARKER).max(axis=-1) < 40).any()
    assert len(red[0]) and np.hypot(red[1] - at[0], red[0] - at[1]).max() < 12
    assert len(y_ticks) >= 3 and all(float(t) % 1 == 0 for t in y_ticks)
    assert float(y_ticks[-1]) >= max(v for _, v in etasw if v != "")  # every value on the chart
    assert x_ticks == list("JFMAMJJASOND") and years == ["2020"]
    # The CSV, as `etm timeseries` writes it.
    assert name == f"etasw_monthly_{lat:.4f}N_{-lon:.4f}W.csv"
    lines = text.splitlines()
    assert lines[0] == "period,value_mm,cog"
    # 9 significant digits: the COG's float32 exactly; and which COG it is.
    rows = [line.split(",") for line in lines[1:]]
    assert [[m, v and float(np.float32(v))] for m, v, _ in rows] == etasw
    assert [cog for *_, cog in rows] == [
        f"mosaic/etasw/2020/etasw_{m[:4]}{m[5:]}.tif" for m in months
    ]
    assert store_reads == ["etasw.zarr"] * 3


def with_another_year(demo: Path, folder: Path) -> Path:
    """The published page, catalog and region COGs, and region indexes where 2020's Items are
    also 2019's (the same COGs): two years to overlay."""
    page = {name.split("/")[0] for name in page_files(str(REPO))}
    for name in (*page, "mosaic", "catalog.json"):
        (folder / name).symlink_to(demo / OUTPUT / name)
    for collection in REGION_COLLECTIONS:
        periods = json.loads((demo / OUTPUT / collection / PERIODS).read_text())["periods"]
        twice = [{**p, "period": p["period"].replace("2020", "2019", 1)} for p in periods]
        (folder / collection).mkdir()
        (folder / collection / PERIODS).write_text(json.dumps({"periods": twice + periods}))
    return folder


def test_map_page_yearly_maps_years_overlaid_polygons_and_places(demo, browser, tmp_path):
    with serving(str(with_another_year(demo, tmp_path))) as (url, requests):
        page = opened(browser, url + "index.html#product=etasw&period=2020")
        # Yearly maps: 2020's sum, on the years' own scale.
        page.wait_for_function("document.body.dataset.rendered === 'etasw 2020'")
        yearly = coloured(map_pixels(page)).mean()
        legend = page.locator("#legend-high").inner_text()
        box = page.locator("#map").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.43, box["y"] + box["height"] * 0.57)
        page.wait_for_function("(document.body.dataset.series || '').includes('yearly')")
        lon, lat = map(float, page.evaluate("document.body.dataset.point").split(","))
        years = table(page)
        top = max(map(float, page.locator("#series-chart .y-tick text").all_text_contents()))
        # The months, with their years overlaid: one line per year, January to December.
        page.locator("#kind").select_option("monthly")
        page.wait_for_function("(document.body.dataset.series || '').includes('monthly')")
        page.locator("#overlay").check()
        lines = page.locator("#series-chart .year-line").evaluate_all(
            "lines => lines.map(l => [l.dataset.year, l.querySelectorAll('circle').length])"
        )
        months = page.locator("#series-chart .x-tick text").all_text_contents()
        overlaid = hash_of(page).get("years")
        # A polygon drawn on the map: its mean series.
        page.locator("#draw").click()
        # The drawing tool's code loads with the first polygon: the button says when it draws.
        page.wait_for_function("document.getElementById('draw').textContent.startsWith('Cancel')")
        corners = [(0.40, 0.45), (0.48, 0.45), (0.48, 0.55), (0.40, 0.55), (0.40, 0.45)]
        for x, y in corners:
            page.mouse.click(box["x"] + box["width"] * x, box["y"] + box["height"] * y)
        page.wait_for_function("(document.body.dataset.series || '').includes('polygon')")
        ring = [list(map(float, xy.split(","))) for xy in hash_of(page)["polygon"].split(";")]
        means = page.locator("#series-values tr").evaluate_all(
            "rows => rows.map(r => [r.dataset.period, Number(r.dataset.value)])"
        )
        # A place from the bundled boundaries, without internet: the counties are fetched
        # once the place finder is used.
        counties = [r for r in requests if "counties.json" in r]
        before = page.evaluate("location.hash")
        page.locator("#place").fill("Fremont, Wyoming")
        page.locator("#place").dispatch_event("change")
        page.wait_for_function("document.body.dataset.place === 'Fremont, Wyoming'")
        # The address follows the view once it has moved (OpenLayers' moveend).
        page.wait_for_function(
            "h => location.hash !== h && location.hash.includes('view=')", arg=before
        )
        centre = hash_of(page)["view"].split(",")[:2]
        assert not page.errors
    assert counties == [] and [r for r in requests if "counties.json" in r] == [
        "GET /counties.json whole"
    ]
    with rasterio.open(demo / OUTPUT / "mosaic/etasw/2020/etasw_2020.tif") as cog:
        year_max = float(np.nanmax(cog.read(1)))
        row, col = cog.index(lon, lat)
        value = float(cog.read(1)[row, col])
    assert yearly > 0.3 and float(legend.removesuffix(" mm")) == pytest.approx(year_max, abs=0.05)
    assert years == [["2019", value], ["2020", value]] and top >= value  # on the chart
    assert lines == [["2019", 12], ["2020", 12]] and overlaid == "overlaid"
    assert months == [
        "Jan",
        "Feb",
        "Mar",
        "Apr",
        "May",
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Oct",
        "Nov",
        "Dec",
    ]
    expected = polygon_series(
        str(demo / OUTPUT), "etasw", {"type": "Polygon", "coordinates": [ring]}
    )  # fmt: skip
    assert [period for period, _ in means] == [
        f"{year}-{month:02d}" for year in (2019, 2020) for month in range(1, 13)
    ]
    assert all(reading.valid_pixels > 4 for reading in expected)
    for (_, mean), reading in zip(means, expected * 2, strict=True):
        assert mean == pytest.approx(reading.value, rel=1e-5), reading.period
    # Fremont County, Wyoming: about 108.6° W, 43.0° N.
    assert float(centre[0]) == pytest.approx(-108.6, abs=0.5)
    assert float(centre[1]) == pytest.approx(43.0, abs=0.5)


NOT_A_MONTH = "is not a month: give YYYY-MM, e.g. 2020-07"
REGION = "the published region (west -116.8207, south 37.3922, east -96.7806, north 47.4018)"


def square(west: float, south: float, east: float, north: float) -> dict:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


@pytest.mark.parametrize(
    ("arguments", "polygon", "message"),
    [
        (["--start", "2020-7"], None, f"--start '2020-7' {NOT_A_MONTH}"),
        (["--end", "2020-7"], None, f"--end '2020-7' {NOT_A_MONTH}"),
        (["--start", "2020-13"], None, f"--start '2020-13' {NOT_A_MONTH}"),
        (["--start", "2020-08", "--end", "2020-03"], None,
         "--start 2020-08 is after --end 2020-03: give the first month first"),
        ([], square(-118, 40, -110, 42),
         f"the polygon (bounds -118.0000, 40.0000, -110.0000, 42.0000) is partly outside {REGION}"
         ": its mean would leave out that part; clip it to the region"),
        ([], square(-60, 42, -59, 43),
         f"the polygon (bounds -60.0000, 42.0000, -59.0000, 43.0000) is outside {REGION}"),
        ([], {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-106, 42]}},
         "the polygon's geometry is Point: give a GeoJSON Polygon or MultiPolygon (a geometry, a "
         "Feature or a FeatureCollection whose first has one)"),
        # GDAL took NaN for an integer, and crashed on a text (exit 139)
        ([], {"type": "Polygon", "coordinates": [[[-106, 42], [-105, 42], [-105, math.nan],
                                                  [-106, 42]]]},
         "the polygon's coordinates cannot be read: [-105, nan] is not a position of 2 or 3 "
         "finite numbers of degrees"),
        ([], {"type": "Polygon", "coordinates": [[[-106, 42], "a", [-105, 43], [-106, 42]]]},
         "the polygon's coordinates cannot be read: a is not a position of 2 or 3 finite "
         "numbers of degrees"),
        ([], {"type": "Polygon", "coordinates": [[[-106, 42], [10**400, 42], [-105, 43],
                                                  [-106, 42]]]},
         f"the polygon's coordinates cannot be read: [1{'0' * 38} is not a position of 2 or 3 "
         "finite numbers of degrees"),
        ([], {"type": "MultiPolygon", "coordinates": [[[-106, 42], [-105, 42]]]},
         "the polygon's coordinates are not those of a MultiPolygon: lists of rings of at least "
         "4 positions"),
        ([], {"type": "FeatureCollection", "features": 5},
         "the polygon's geometry is missing: give a GeoJSON Polygon or MultiPolygon (a geometry, "
         "a Feature or a FeatureCollection whose first has one)"),
    ],
)  # fmt: skip
def test_timeseries_refuses_bad_input_in_one_line(demo, tmp_path, arguments, polygon, message):
    where = ["--lon", "-106.7", "--lat", "42.1"]
    if polygon:
        (tmp_path / "field.geojson").write_text(json.dumps(polygon))
        where = ["--polygon", str(tmp_path / "field.geojson")]
    result = etm_command(
        "timeseries", "--product", "etasw", *where, *arguments, str(OUTPUT), cwd=demo
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [f"etm error: {message}"]


@pytest.mark.parametrize(
    ("polygon", "problem"),
    [
        ("/dev/zero", "cannot be read ([Errno 22] not a regular file: '/dev/zero')"),
        ("{tmp}/fifo", "cannot be read ([Errno 22] not a regular file: '{tmp}/fifo')"),
        ("{tmp}/big", "is larger than 64 MiB"),
        ("/nowhere/field.geojson", "cannot be read ([Errno 2] No such file or directory: "
         "'/nowhere/field.geojson')"),
    ],
)  # fmt: skip
def test_timeseries_reads_no_polygon_file_larger_than_a_polygon(demo, tmp_path, polygon, problem):
    polygon, problem = polygon.format(tmp=tmp_path), problem.format(tmp=tmp_path)
    if polygon.endswith("fifo"):
        os.mkfifo(polygon)  # a read waited for a writer forever
    elif polygon.endswith("big"):
        with open(polygon, "wb") as stream:
            stream.truncate(64 * 2**20 + 1)  # sparse: no disk taken
    result = etm_command(
        "timeseries", "--product", "etasw", "--polygon", polygon, str(OUTPUT), cwd=demo
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [f"etm error: {polygon}: {problem}; give a GeoJSON file"]


@pytest.mark.parametrize("password", ["TS/PW9SECRET", "TS PW9SECRET"])
def test_timeseries_with_a_password_in_the_url_sends_it_as_basic_authentication_only(
    demo, tmp_path, password
):
    # A / in the password: urllib read host "etm-user" and port "TS", and the error line
    # quoted the whole password; a space ended the URL the masking saw. A point is read
    # from the series store, a polygon through GDAL from the COGs.
    lon, lat = pixel_centre(demo / SERIES_CHIP / "2020" / "etasw_202007.tif", 10, 20)
    field = tmp_path / "field.geojson"
    field.write_text(json.dumps(square(lon - 0.05, lat - 0.05, lon + 0.05, lat + 0.05)))
    asked = [
        ["timeseries", "--product", "etasw", "--lon", str(lon), "--lat", str(lat)],
        ["timeseries", "--product", "etasw", "--polygon", str(field), "--end", "2020-03"],
    ]
    local = [etm_command(*arguments, str(OUTPUT), cwd=demo) for arguments in asked]
    with serving(str(demo / OUTPUT)) as (url, requests):
        prefix = url.replace("://", f"://etm-user:{password}@").rstrip("/")
        remote = [etm_command(*arguments, prefix, cwd=demo) for arguments in asked]
        missing = etm_command(*asked[0], f"{prefix}/nowhere", cwd=demo)
    for got, want in zip(remote, local, strict=True):
        assert got.returncode == want.returncode == 0, got.stderr
        assert got.stdout == want.stdout
    assert len(remote[0].stdout.splitlines()) == 13 and len(remote[1].stdout.splitlines()) == 4
    pair = base64.b64encode(f"etm-user:{password}".encode()).decode()
    assert any(".tif" in r for r in requests) and any(".zarr" in r for r in requests)
    assert all(r.endswith(f" Basic {pair}") for r in requests), requests
    assert missing.returncode == 1
    [line] = missing.stderr.splitlines()
    assert line.startswith(f"etm error: {url.replace('://', '://***@')}nowhere/"), line
    for result in (*remote, missing):
        for secret in ("PW9SECRET", password[:3], "etm-user"):
            assert secret not in result.stdout + result.stderr


def test_a_token_in_a_catalog_urls_query_is_never_printed(tmp_path):
    url = "https://127.0.0.1:9/out?token=PWSECRET9"
    result = etm_command(
        "timeseries", "--product", "etasw", "--lon", "-106", "--lat", "42", url, cwd=tmp_path
    )
    assert result.returncode == 1 and "PWSECRET9" not in result.stdout + result.stderr
    assert result.stderr.startswith("etm error: https://127.0.0.1:9/out?token=*** "), result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_timeseries_whose_reader_stops_reading_ends_without_a_traceback(demo):
    etm = Path(SNAKEMAKE).parent / "etm"
    command = f"{etm} timeseries --product etasw --lon -106.7 --lat 42.1 {OUTPUT} | true"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], cwd=demo, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (1, "")  # as `cat` would: no line, not 0


def test_timeseries_of_an_empty_catalog_reads_nothing(demo):
    result = etm_command("timeseries", "--product", "etasw", "--lon", "-106.7", "--lat", "42",
                         "", cwd=demo)  # fmt: skip
    assert result.stderr == (
        "etm error: give the output prefix, or its catalog.json: the catalog is ''\n"
    )
