"""Bytes `etm timeseries` fetches to start a series, on the STAC indexes of an archive of
the team's size, and the sizes of those indexes.

Builds the Items of 18 tiles and the region, 12 products, 20 years of months and years
(59,280 Items) with etm's own Item builder (`etm.stac.item_for`), each from a small COG of
its place's real grid (10-degree tiles of 0.0208-degree pixels; the region their union)
standing for every period of that place, and writes them beside where their COGs would be.
Then writes the catalog, the Collections and their indexes as the catalog job does
(`etm.stac.write_catalog`), serves the output prefix over loopback HTTP, and asks
`etm.timeseries.region_months` for one product's months, as `etm timeseries` does before
it reads any COG. Prints the bytes of each request, the indexes' sizes, and what one
index of every Item (the former `items.ndjson`) would weigh.

Usage: .venv/bin/python benchmarks/index_size.py [--tiles 18] [--years 20] [--folder DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from rangeserver import served_bytes, serving  # noqa: E402

from etm import plan, stac, timeseries  # noqa: E402

PRODUCTS = "etasw etasw5 etc netet srf dd rain swe snwpk snowmelt swi swf".split()
PIXEL = 0.020815  # degrees: the model's lattice
TILE_PIXELS = 482
#: The indexes name every file under an address of a CloudFront distribution's length.
PUBLIC_URL = "https://d111111abcdef8.cloudfront.net/USA/TBD"


def place_cog(folder: Path, place: str, west: float, north: float, width: int) -> str:
    """A small COG on a place's grid: its header and statistics are what an Item reads."""
    path = folder / f"{place}.tif"
    transform = from_origin(west, north, PIXEL * width / 64, PIXEL * TILE_PIXELS / 64)
    profile = dict(
        driver="GTiff", width=64, height=64, count=1, dtype="float32", nodata=np.nan,
        crs="EPSG:4326", transform=transform,
    )  # fmt: skip
    with rasterio.open(path, "w", **profile) as cog:
        cog.write(np.linspace(0, 250, 64 * 64, dtype="float32").reshape(1, 64, 64))
        cog.update_tags(
            1, STATISTICS_MINIMUM=0.0, STATISTICS_MAXIMUM=250.0, STATISTICS_MEAN=125.0,
            STATISTICS_STDDEV=72.2, STATISTICS_VALID_PERCENT=98.1,
        )  # fmt: skip
    return str(path)


def publications(tiles: int, years: range) -> list[plan.Publication]:
    periods = [plan.Period(year, month) for year in years for month in [*range(1, 13), None]]
    places = [f"r50.0_tile{index}" for index in range(tiles)] + [None]
    return [
        plan.Publication(product, period, place)
        for product in PRODUCTS
        for period in periods
        for place in places
    ]


def write_items(output: str, cogs: dict[str | None, str], chunk: list[plan.Publication]) -> None:
    """Write the Items of some publications, as their COGs' jobs do."""
    for p in chunk:
        href = f"{p.name}.json"
        item = stac.item_for(
            cogs[p.tile], href=href, collection=p.collection, product=p.product, tile=p.tile,
            period=str(p.period), aggregation=None if p.period.is_month else "sum",
            thumbnail=None if p.tile else f"{os.path.basename(p.name)}.png",
        )  # fmt: skip
        path = Path(output) / href
        path.parent.mkdir(parents=True, exist_ok=True)
        stac.write(item, str(path))


def build_index(root: Path, tiles: int, years: int) -> tuple[Path, list[str]]:
    """The archive's Items, catalog, Collections and indexes under ``root/out``, as the
    COGs' jobs and the catalog job write them; its output prefix and Collections."""
    output = root / "out"
    output.mkdir(parents=True, exist_ok=True)
    columns = max(1, (tiles + 1) // 2)
    cogs = {
        f"r50.0_tile{i}": place_cog(
            root, f"tile{i}", -126 + 10 * (i % columns), 50 - 10 * (i // columns), TILE_PIXELS
        )
        for i in range(tiles)
    }
    cogs[None] = place_cog(root, "region", -126, 50, TILE_PIXELS * columns)
    published = publications(tiles, range(2001, 2001 + years))
    start = time.perf_counter()
    chunks = [published[i::8] for i in range(8)]
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(write_items, [str(output)] * 8, [cogs] * 8, chunks))
    print(f"built {len(published):,} Items in {time.perf_counter() - start:.0f} s")

    collections = sorted({p.collection for p in published})
    for collection in collections:  # Snakemake makes its outputs' folders
        (output / collection).mkdir()
    hrefs = [f"{p.name}.json" for p in published]
    start = time.perf_counter()
    stac.write_catalog(
        [str(output / href) for href in hrefs], hrefs=hrefs, on_s3=None, kept=None,
        kept_by_region=None, collections=collections, license="other", license_url=None,
        base=PUBLIC_URL, catalog=str(output / "catalog.json"),
        collection_files=[str(output / plan.collection_href(c)) for c in collections],
        index_files=[str(output / h) for c in collections for h in plan.index_hrefs(c)],
    )  # fmt: skip
    print(f"wrote the catalog and its indexes in {time.perf_counter() - start:.0f} s")
    return output, collections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=18)
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--folder", help="where to build the archive (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        output, collections = build_index(Path(args.folder or scratch), args.tiles, args.years)
        sizes = {
            suffix: {c: (output / c / f"items.{suffix}").stat().st_size for c in collections}
            for suffix in ("ndjson", "parquet")
        }
        for suffix, by_collection in sizes.items():
            largest = max(by_collection, key=by_collection.get)
            print(
                f"items.{suffix}: {len(by_collection)} Collections, {sum(by_collection.values()):,}"
                f" bytes in all, largest {largest} {by_collection[largest]:,}, etasw-monthly "
                f"{by_collection['etasw-monthly']:,}"
            )
        every = sum(sizes["ndjson"].values())
        print(f"one index of every Item (the former items.ndjson): {every:,} bytes")

        with serving(str(output)) as (url, requests):
            months = timeseries.region_months(url.rstrip("/"), "etasw", None, None)
        fetched = 0
        for request in requests:
            size = served_bytes(output, request)
            fetched += size
            print(f"  {request}: {size:,} bytes")
        print(
            f"etm timeseries (etasw, {len(months)} region months) fetches {fetched:,} bytes in "
            f"{len(requests)} request(s) before its first COG"
        )


if __name__ == "__main__":
    main()
