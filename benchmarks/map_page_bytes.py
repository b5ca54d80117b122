"""Bytes the map page fetches to open, and to start a pixel's series, on an archive of the
team's size.

Builds the STAC Items, catalog and indexes of 18 tiles and the region, 12 products, 20 years
of months and years (59,280 Items) as `index_size.py` does, then one region COG with
etm's COG writer (`etm.cog.build_cog`, the config's defaults) on the region's grid at a
tenth of the model's resolution (0.0208 degrees: 4,338 x 964 pixels, whose overviews the
first view reads as it would the team's), a seasonal field with a land-cover texture,
published under every etasw region month's and year's name; the series store of etasw's
240 months (`etm.series.update_store`); and the map page (`etm.web`). Serves the output
prefix on loopback HTTP with range requests, opens the page in chromium (playwright), and
counts the bytes served:

1. to open (on etasw, the product whose COGs are there): from the address until the first
   month is drawn, its period list shown and nothing more is fetched;
2. to start a series: a click on the map, until the pixel's series is shown.

Prints each file's requests and bytes (and, for files fetched whole, their gzip -9 size,
which a host may serve instead), with the date and the commit.

Usage: .venv/bin/python benchmarks/map_page_bytes.py [--tiles 18] [--years 20] [--folder DIR]
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import rasterio
from playwright.sync_api import sync_playwright
from rasterio.transform import from_origin

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from index_size import PIXEL, TILE_PIXELS, build_index  # noqa: E402
from rangeserver import served_bytes, serving  # noqa: E402

from etm import plan, series, web  # noqa: E402
from etm.cog import Metadata, build_cog  # noqa: E402
from etm.sample import field  # noqa: E402

WEST, NORTH = -126.0, 50.0
COG_OPTIONS = dict(
    dtype="float32", compress="ZSTD", level=9, predictor="3", blocksize=512, gdal_cache_mb=64
)


def region_cog(folder: Path, columns: int, rows: int) -> Path:
    """A region month's COG on the region's grid: seasonal, with a 6-pixel texture."""
    width, height = TILE_PIXELS * columns, TILE_PIXELS * rows
    lons = WEST + (np.arange(width) + 0.5) * PIXEL
    lats = NORTH - (np.arange(height) + 0.5) * PIXEL
    texture = np.random.default_rng(0).gamma(4.0, 0.25, (-(-height // 6), -(-width // 6)))
    values = (
        field("etasw", 2001, 7, lons, lats) * np.kron(texture, np.ones((6, 6)))[:height, :width]
    )
    source = folder / "region-source.tif"
    profile = dict(
        driver="GTiff", width=width, height=height, count=1, dtype="float64", crs="EPSG:4326",
        transform=from_origin(WEST, NORTH, PIXEL, PIXEL),
    )  # fmt: skip
    with rasterio.open(source, "w", **profile) as out:
        out.write(values, 1)
    cog = folder / "region-cog.tif"
    build_cog([str(source)], str(cog), metadata=Metadata("etasw", "mm", {}), **COG_OPTIONS)
    source.unlink()
    return cog


def publish_region(output: Path, cog: Path, years: int) -> list[series.SourceCog]:
    """The COG under every etasw region month's and year's name; the months, for the store."""
    months = []
    for year in range(2001, 2001 + years):
        for period in [plan.Period(year, month) for month in range(1, 13)] + [plan.Period(year)]:
            href = f"{plan.Publication('etasw', period, None).name}.tif"
            (output / href).parent.mkdir(parents=True, exist_ok=True)
            os.link(cog, output / href)
            if period.is_month:
                months.append(series.SourceCog(str(period), href, str(output / href)))
    return months


def report(title: str, output: Path, requests: list[str]) -> None:
    """Requests and bytes per file, then the total."""
    by_file: dict[str, list[int]] = defaultdict(list)
    whole = set()
    for request in requests:
        path = request.split(" ")[1].lstrip("/")
        by_file[path].append(served_bytes(output, request))
        if request.endswith(" whole") and (output / path).is_file():
            whole.add(path)
    print(f"{title}: {sum(map(sum, by_file.values())):,} bytes in {len(requests)} requests")
    print(f"  {'file':<44} {'requests':>8} {'bytes':>11} {'gzip -9':>9}")
    for path, sizes in sorted(by_file.items(), key=lambda kv: -sum(kv[1])):
        zipped = len(gzip.compress((output / path).read_bytes(), 9)) if path in whole else None
        print(
            f"  {path:<44} {len(sizes):>8} {sum(sizes):>11,} "
            f"{'' if zipped is None else f'{zipped:,}':>9}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=18)
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--folder", help="where to build the archive (default: a temporary one)")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("Debian's chromium is needed: make system-packages")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.folder or scratch)
        output = root / "out"
        if not (output / "catalog.json").exists():  # built once in a --folder
            build_index(root, args.tiles, args.years)
            columns = max(1, (args.tiles + 1) // 2)
            rows = -(-args.tiles // columns)
            months = publish_region(output, region_cog(root, columns, rows), args.years)
            store = output / series.STORE.format(product="etasw")
            series.update_store(str(store), "etasw", months)
        files = web.page_files(str(REPO))
        (output / web.CHUNKS).mkdir(exist_ok=True)  # as Snakemake makes its outputs' folders
        web.write_page(list(files.values()), [str(output / name) for name in files])

        with serving(str(output)) as (url, requests), sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.set_default_timeout(120_000)  # a loaded machine
            page.goto(url + "index.html#product=etasw")
            page.wait_for_function("(document.body.dataset.rendered || '').startsWith('etasw')")
            page.wait_for_load_state("networkidle")
            opening = list(requests)
            box = page.locator("#map").bounding_box()
            page.mouse.click(box["x"] + box["width"] * 0.43, box["y"] + box["height"] * 0.57)
            page.wait_for_function("document.body.dataset.series")
            page.wait_for_load_state("networkidle")
            clicked = requests[len(opening) :]
            shown = page.evaluate("document.body.dataset.rendered")
            periods = page.evaluate("Number(document.getElementById('month').max) + 1")
            browser.close()
        print(
            f"{datetime.date.today()}, commit {commit}: the map page on {args.tiles} tiles and "
            f"the region, 12 products, {args.years} years; opened on {shown} of {periods} periods"
        )
        report("1. to open the page", output, opening)
        report("2. to start a series (a click)", output, clicked)


if __name__ == "__main__":
    main()
