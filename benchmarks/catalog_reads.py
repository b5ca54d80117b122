"""S3 requests, wall and CPU of the STAC catalog reading the published Items, at the team's
scale, on moto's S3 server (loopback).

Publishes the Items of 18 tiles and the region, 12 products, 20 years of months and years
(56,160 tile Items and 3,120 region Items of 2.3 KB, a published Item's size), and, as
each region period's job does, one object of its period's Items in the work area
(`etm.stac.keep_items`). Then times the catalog's reading of the Items
(`etm.stac.item_texts`, in its own process), in turn:

1. one by one: the work area keeps nothing (as before region jobs kept their Items);
2. first catalog: the work area keeps only what the region jobs wrote;
3. nothing changed: the next catalog;
4. one month redone: its 19 Items published again, its region job's object written again.

Prints each one's GET and LIST requests, wall time and CPU-s.

Usage: .venv/bin/python benchmarks/catalog_reads.py [--tiles 18] [--years 20]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from s3server import S3Server  # noqa: E402

from etm import plan, stac  # noqa: E402

PRODUCTS = "etasw etasw5 etc netet srf dd rain swe snwpk snowmelt swi swf".split()
OUTPUT = "ws-enduser/USA/bench"
KEPT = plan.KEPT_ITEMS.format(work="ws-work/etm", output=OUTPUT)
ITEM_BYTES = 2300


def publications(tiles: int, years: range) -> list[plan.Publication]:
    periods = [
        plan.Period(year, month) for year in years for month in [*range(1, 13), None]
    ]  # fmt: skip
    places = [f"r50.0_tile{index}" for index in range(tiles)] + [None]
    return [
        plan.Publication(product, period, place)
        for product in PRODUCTS
        for period in periods
        for place in places
    ]


def item_text(href: str, version: int = 0) -> str:
    text = json.dumps({"id": href, "version": version, "pad": ""})
    return text.replace('"pad": ""', f'"pad": "{"x" * (ITEM_BYTES - len(text))}"')


def catalog_read(server: S3Server, hrefs: list[str], by_region: list[str]) -> tuple:
    """Run etm.stac.item_texts in its own process: requests by kind, wall s, CPU-s."""
    job = REPO / "benchmarks" / "cache" / "catalog-reads.json"
    job.parent.mkdir(parents=True, exist_ok=True)
    job.write_text(json.dumps(dict(hrefs=hrefs, kept_by_region=by_region)))
    server.reset_count()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--child", str(job)],
        env={**os.environ, **server.environment},
        check=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    counts = server.count()
    return counts["GET"], counts["LIST"], wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=18)
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        job = json.loads(Path(args.child).read_text())
        stac.item_texts(
            [], job["hrefs"], on_s3=OUTPUT, kept=KEPT, kept_by_region=job["kept_by_region"]
        )
        return
    published = publications(args.tiles, range(2001, 2001 + args.years))
    hrefs = [f"{p.name}.json" for p in published]
    by_region = [p.kept_items(KEPT) for p in published]
    server = S3Server()
    os.environ.update(server.environment)  # keep_items writes as a region job does
    s3 = server.client()
    for bucket in ("ws-enduser", "ws-work"):
        s3.create_bucket(Bucket=bucket)
    start = time.perf_counter()

    def publish(href: str, version: int = 0) -> None:
        s3.put_object(Bucket="ws-enduser", Key=f"USA/bench/{href}", Body=item_text(href, version))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(publish, hrefs))
    print(f"published {len(hrefs):,} Items in {time.perf_counter() - start:.0f} s")

    members: dict[str, list[str]] = {}
    for href, region in zip(hrefs, by_region, strict=True):
        members.setdefault(region, []).append(href)

    def keep(region: str, version: int = 0) -> None:
        stac.keep_items(region, {href: item_text(href, version) for href in members[region]})

    print(f"\n{'catalog':<36}{'GET':>8}{'LIST':>6}{'wall s':>9}{'CPU-s':>8}")

    def report(label: str) -> None:
        gets, lists, wall, cpu = catalog_read(server, hrefs, by_region)
        print(f"{label:<36}{gets:>8,}{lists:>6}{wall:>9.1f}{cpu:>8.1f}", flush=True)

    report("1. one by one (nothing kept)")
    s3.delete_object(Bucket="ws-work", Key=KEPT.removeprefix("ws-work/") + ".ndjson")
    for region in members:
        keep(region)
    report(f"2. first, from {len(members):,} region objects")
    report("3. nothing changed")
    month = next(region for region in members if region.endswith("01.ndjson"))
    for href in members[month]:
        publish(href, version=1)
    keep(month, version=1)
    report("4. one month redone")
    server.stop()


if __name__ == "__main__":
    main()
