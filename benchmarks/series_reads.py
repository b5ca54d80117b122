"""A point's 20-year series: requests, bytes and wall from the series store against the region
COGs, and the store's build CPU.

A synthetic region of SIZE x SIZE pixels and YEARS x 12 monthly COGs, built by
etm.cog.build_cog with the config's defaults (float32, ZSTD 9, floating-point predictor, 512
x 512 blocks, overviews): seasonal fields (etm.sample.field) with a fixed land-cover texture
(6-pixel squares) and each month's own weather (16-pixel squares), so that a full block
compresses about as the team's do (its size is printed). Generated once under
benchmarks/cache/ (git-ignored), with the GeoParquet index of the region months.

Then:
1. Build CPU of the store (etm.series.update_store): every month, then again after one
   month's COG changed (what a run that publishes or redoes a month costs: the whole store
   is written anew), per month of the store and scaled to the team's region (18 tiles of
   4,805 x 4,805 pixels).
2. For POINTS random points, side by side, each in its own process (GDAL keeps what it
   read in a process): ``etm.timeseries.point_series`` over HTTP from a loopback server
   with range support (tests/rangeserver.py), from the store, then from the COGs (the same
   prefix without ``series/``). Requests, bytes and wall per series: median (min-max), and
   the ratios COGs/store paired by point.

Usage: .venv/bin/python benchmarks/series_reads.py [--years 20] [--size 1024] [--points 9]
       .venv/bin/python benchmarks/series_reads.py --smoke    (2 years, 512 pixels, 3 points)
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from rangeserver import served_bytes, serving  # noqa: E402

from etm import series, stac  # noqa: E402
from etm.cog import Metadata, build_cog  # noqa: E402
from etm.sample import MODEL_PIXEL, field  # noqa: E402

WEST, NORTH = -110.0, 44.0
#: The team's region: 18 tiles of 5 x 5 chips of about 961 x 961 pixels.
TEAM_PIXELS = 18 * 4805 * 4805
COG_OPTIONS = dict(
    dtype="float32", compress="ZSTD", level=9, predictor="3", blocksize=512, gdal_cache_mb=32
)


def month_values(year: int, month: int, size: int) -> np.ndarray:
    """A month's field: seasonal, a fixed texture (land cover), the month's own noise."""
    lons = WEST + (np.arange(size) + 0.5) * MODEL_PIXEL
    lats = NORTH - (np.arange(size) + 0.5) * MODEL_PIXEL
    smooth = field("etasw", year, month, lons, lats)
    texture = patches(np.random.default_rng(0).gamma(4.0, 0.25, (size, size)), 6, size)
    weather = np.random.default_rng(year * 100 + month).normal(1.0, 0.1, (size, size))
    return smooth * texture * patches(weather, 16, size)


def patches(values: np.ndarray, edge: int, size: int) -> np.ndarray:
    """Squares of ``edge`` pixels of one value each."""
    coarse = values[: -(-size // edge), : -(-size // edge)]
    return np.kron(coarse, np.ones((edge, edge)))[:size, :size]


def metadata(period: str, version: int) -> Metadata:
    return Metadata(f"etasw {period}", "mm", {"ETM_SOURCES_DIGEST": f"v{version}-{period}"})


def region(folder: Path, years: int, size: int) -> list[series.SourceCog]:
    """The synthetic region's monthly COGs and index (generated once)."""
    cogs, items = [], []
    for year in range(2001, 2001 + years):
        for month in range(1, 13):
            period = f"{year}{month:02d}"
            href = f"mosaic/etasw/{year}/etasw_{period}.tif"
            cog = folder / href
            if not cog.exists():
                cog.parent.mkdir(parents=True, exist_ok=True)
                source = folder / "source.tif"
                profile = dict(
                    driver="GTiff", width=size, height=size, count=1, dtype="float64",
                    crs="EPSG:4326", transform=from_origin(WEST, NORTH, MODEL_PIXEL, MODEL_PIXEL),
                )  # fmt: skip
                with rasterio.open(source, "w", **profile) as out:
                    out.write(month_values(year, month, size), 1)
                build_cog([str(source)], str(cog), metadata=metadata(period, 1), **COG_OPTIONS)
            east, south = WEST + size * MODEL_PIXEL, NORTH - size * MODEL_PIXEL
            corners = [[WEST, south], [east, south], [east, NORTH], [WEST, NORTH], [WEST, south]]
            items.append({
                "type": "Feature", "stac_version": "1.1.0", "id": f"region_etasw_{period}",
                "collection": "etasw-monthly", "bbox": [WEST, south, east, NORTH],
                "geometry": {"type": "Polygon", "coordinates": [corners]},
                "properties": {"datetime": f"{year}-{month:02d}-01T00:00:00Z"},
                "links": [{"rel": "root", "href": "../catalog.json"}],
                "assets": {"data": {"href": f"../{href}"}},
            })  # fmt: skip
            cogs.append(series.SourceCog(period, href, str(cog)))
    (folder / "etasw-monthly").mkdir(exist_ok=True)
    stac.write_geoparquet(items, str(folder / "etasw-monthly" / "items.parquet"))
    (folder / "source.tif").unlink(missing_ok=True)
    return cogs


def cpu_of(step) -> float:
    """CPU-s of a step in this process, its threads included."""
    start = time.process_time()
    step()
    return time.process_time() - start


READ = (
    "import sys, time; from etm.timeseries import point_series; t = time.perf_counter(); "
    "r = point_series(sys.argv[1], 'etasw', float(sys.argv[2]), float(sys.argv[3])); "
    "print(time.perf_counter() - t, len(r), repr([x.value for x in r]))"
)


def read_series(url: str, folder: Path, lon: float, lat: float) -> tuple[int, int, float, str]:
    """Requests, bytes, wall and values of one point's series, read in a new process."""
    with serving(str(folder)) as (base, requests):
        env = {**os.environ, "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
        result = subprocess.run(
            [sys.executable, "-c", READ, base.rstrip("/"), str(lon), str(lat)],
            capture_output=True, text=True, check=True, env=env,
        )  # fmt: skip
        wall, _, values = result.stdout.split(" ", 2)
        return len(requests), sum(served_bytes(folder, r) for r in requests), float(wall), values


def spread(values: list[float], unit: str = "", digits: int = 0) -> str:
    return (
        f"{statistics.median(values):,.{digits}f}{unit} "
        f"({min(values):,.{digits}f}-{max(values):,.{digits}f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--points", type=int, default=9)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.years, args.size, args.points = 2, 512, 3
    folder = REPO / "benchmarks" / "cache" / f"series-{args.years}y-{args.size}px"
    cogs = region(folder, args.years, args.size)
    months = len(cogs)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    print(
        f"{datetime.date.today()}, {platform.node()}: {os.cpu_count()} cores, commit {commit}; "
        f"{months} months of {args.size} x {args.size} pixels"
    )
    with rasterio.open(cogs[-1].path) as cog:
        block = cog.block_size(1, 0, 0)
    print(f"a full COG block: {block / 1e3:,.0f} KB (the team's: about 380 KB)")

    store = folder / series.STORE.format(product="etasw")
    with tempfile.TemporaryDirectory() as scratch:
        built = Path(scratch) / "etasw.zarr"
        full = cpu_of(lambda: series.update_store(str(built), "etasw", cogs))
        # The last month redone: its COG with another sources' digest.
        last = cogs[-1]
        redone = Path(scratch) / "redone.tif"
        build_cog([last.path], str(redone), metadata=metadata(last.period, 2), **COG_OPTIONS)
        redo = [*cogs[:-1], series.SourceCog(last.period, last.href, str(redone))]
        again = cpu_of(lambda: series.update_store(str(built), "etasw", redo))
        size = sum(f.stat().st_size for f in built.rglob("*") if f.is_file())
        cog_size = sum(Path(c.path).stat().st_size for c in cogs)
        # The store served: this one (another etm's, in the cache, may be of another layout).
        shutil.rmtree(store.parent, ignore_errors=True)
        store.parent.mkdir()
        os.replace(built, store)
    scale = TEAM_PIXELS / args.size**2
    print(
        f"\nStore: {size / 1e6:,.1f} MB ({size / cog_size:.2f} x the COGs' "
        f"{cog_size / 1e6:,.1f} MB, overviews included)\n"
        f"build CPU, every month: {full:.1f} CPU-s, {full / months:.3f} CPU-s a month; "
        f"the team's region: {full / months * scale:,.0f} CPU-s a month\n"
        f"a run that adds or redoes one month: {again:.1f} CPU-s ({again / months:.3f} a month "
        f"of the store); the team's region: {again * scale / 3600:,.1f} CPU-h a product"
    )

    without = Path(tempfile.mkdtemp(prefix="etm-cogs-only-"))
    for name in ("etasw-monthly", "mosaic"):
        (without / name).symlink_to(folder / name)
    rng = random.Random(1)
    rows = []
    for _ in range(args.points):
        col, row = rng.randrange(args.size), rng.randrange(args.size)
        lon, lat = WEST + (col + 0.5) * MODEL_PIXEL, NORTH - (row + 0.5) * MODEL_PIXEL
        stored = read_series("", folder, lon, lat)
        cogs_read = read_series("", without, lon, lat)
        assert stored[3] == cogs_read[3], "the store and the COGs disagree"
        rows.append((stored, cogs_read))
    print(
        f"\nA point's {months}-month series over HTTP (loopback), {args.points} points, "
        "each read in its own process; median (min-max)\n"
        f"{'':8}{'requests':>22}{'KB':>28}{'wall s':>26}"
    )
    for label, index in (("store", 0), ("COGs", 1)):
        picked = [r[index] for r in rows]
        print(
            f"{label:8}{spread([p[0] for p in picked]):>22}"
            f"{spread([p[1] / 1e3 for p in picked]):>28}"
            f"{spread([p[2] for p in picked], digits=3):>26}"
        )
    ratios = [
        (c[0] / s[0], c[1] / s[1], c[2] / s[2]) for s, c in rows
    ]  # fmt: skip
    print(
        f"COGs/store, paired by point: requests {spread([r[0] for r in ratios], 'x', 1)}, "
        f"bytes {spread([r[1] for r in ratios], 'x', 1)}, "
        f"wall {spread([r[2] for r in ratios], 'x', 1)}"
    )
    worst = max(rows, key=lambda r: r[0][1])[0]
    met = "met" if worst[0] <= 3 and worst[1] <= 1e6 else "NOT met"
    print(
        f"goals: <= 3 requests and <= 1 MB for the series from the store: {worst[0]} requests, "
        f"{worst[1] / 1e6:.2f} MB at most -> {met}"
    )


if __name__ == "__main__":
    main()
