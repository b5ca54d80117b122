"""Mosaic speed and memory at real chip size: etm beside the GDAL command line and rasterio.merge.

Chips are made as the model makes them: 2 x 2 degree squares at 0.0020810045 degree
pixels (about 961 x 961), float64, uncompressed, one-row strips, NaN without a nodata tag,
cut from one master lattice (neighbours overlap by up to a pixel, with equal values), smooth
seasonal fields with lakes and oceans. A CONUS-like block of 375 chips (25 x 15, 2.8 GB) is
generated once under benchmarks/cache/ (git-ignored); one tile (25 chips) and a 2 x 2
block of tiles (100 chips) are taken from its interior.

For each size, repeated, each method in its own process, in the same order:
1. etm: etm.cog.build_cog exactly as the workflow calls it (config defaults);
2. gdal: gdalbuildvrt + gdal_translate -of COG (Debian's gdal-bin), same creation options;
3. merge: rasterio.merge into memory, then the same COG options through rasterio.
Prints median wall time, ratios, peak resident memory, output size, whether the full
resolutions are pixel-equal (NaN included), and each output's 8x overview error against the
true area mean. Then, with size 375, the region built from its 15 tile COGs against the
direct one; and the goals, with etm's wall against GDAL's paired by repeat (median,
min-max). Encodings are priced by benchmarks/rebuild.py.

Usage: .venv/bin/python benchmarks/mosaic_speed.py [--sizes 25 100 375] [--repeat 3] [--threads 2]
       .venv/bin/python benchmarks/mosaic_speed.py --smoke    (one coarse tile, for CI)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
import yaml
from launcher import launch
from rasterio.windows import Window

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "benchmarks" / "cache"
BLOCK = (15, 25)  # chip rows and columns of the CONUS-like block
SUBSETS = {25: (5, 10, 5), 100: (3, 8, 10), 375: (0, 0, None)}  # first row, first column, edge
METHODS = ("etm", "gdal", "merge")


def workflow_settings() -> dict:
    """The mosaic step's arguments as the workflow passes them, from the config's defaults."""
    from etm.config import load_settings, read_schema

    schema = read_schema(REPO)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    settings = load_settings(config, schema)
    return dict(
        **settings.cog, gdal_cache_mb=settings.gdal_cache_mb, threads=settings.mosaic_threads
    )


def ensure_chips(folder: Path, pixel: float) -> list[list[Path]]:
    """The block's chips (generated once), as rows of paths in reading order."""
    from etm.grid import Chip
    from etm.sample import chip_grid, field, write_chip

    rows = []
    for row in range(BLOCK[0]):
        rows.append([])
        for col in range(BLOCK[1]):
            chip = Chip(494 - 20 * row, -1248 + 20 * col)
            path = folder / f"{chip.name}.tif"
            if not path.exists():
                folder.mkdir(parents=True, exist_ok=True)
                grid = chip_grid(chip, pixel)
                write_chip(str(path), grid, field("etasw", 2020, 7, grid.lons, grid.lats))
            rows[-1].append(path)
    return rows


def block(rows: list[list[Path]], first_row: int, first_col: int, edge: int) -> list[str]:
    """Paths of an edge x edge block of chips, in reading order."""
    picked = [row[first_col : first_col + edge] for row in rows[first_row : first_row + edge]]
    return [str(path) for row in picked for path in row]


def subset(rows: list[list[Path]], size: int) -> list[str]:
    first_row, first_col, edge = SUBSETS[size]
    if edge is None:
        return [str(path) for row in rows for path in row]
    return block(rows, first_row, first_col, edge)


# -- the three methods, each run in its own process ----------------------------------------


def run_etm(sources: list[str], output: str, options: dict) -> None:
    from etm.cog import build_cog

    build_cog(sources, output, tmpdir=os.path.dirname(output), **options)


def gdal_options(options: dict) -> dict:
    """The same creation options, with GDAL's own AVERAGE overviews."""
    return dict(
        COMPRESS=options["compress"],
        LEVEL=options["level"],
        PREDICTOR=options["predictor"],
        BLOCKSIZE=options["blocksize"],
        OVERVIEW_RESAMPLING="AVERAGE",
        NUM_THREADS=options["threads"],
        BIGTIFF="IF_SAFER",
    )


def run_merge(sources: list[str], output: str, options: dict) -> None:
    from rasterio.merge import merge

    from etm.cog import cache_bytes

    with rasterio.Env(GDAL_CACHEMAX=cache_bytes(options["gdal_cache_mb"])):
        mosaic, transform = merge(sources, nodata=np.nan, dtype=options["dtype"], method="first")
        with rasterio.open(sources[0]) as first:
            crs = first.crs
        height, width = mosaic.shape[1:]
        profile = dict(
            driver="MEM", width=width, height=height, count=1, dtype=options["dtype"],
            crs=crs, transform=transform, nodata=np.nan,
        )  # fmt: skip
        with rasterio.open("", "w", **profile) as memory:
            memory.write(mosaic)
            del mosaic
            rasterio.shutil.copy(
                memory, output, driver="COG", STATISTICS="YES", **gdal_options(options)
            )


def gdal_command(sources: list[str], output: str, options: dict) -> list[str]:
    work = os.path.dirname(output)
    listing = os.path.join(work, "sources.txt")
    # gdalbuildvrt puts later files on top: list them in reverse so that, as in etm and
    # rasterio.merge, the first valid value in reading order wins.
    Path(listing).write_text("\n".join(reversed(sources)))
    vrt = os.path.join(work, "mosaic.vrt")
    creation = [f"-co {key}={value}" for key, value in gdal_options(options).items()]
    build = f"gdalbuildvrt -q -srcnodata nan -vrtnodata nan -input_file_list {listing} {vrt}"
    translate = (
        f"gdal_translate -q --config GDAL_CACHEMAX {options['gdal_cache_mb']} -of COG -stats "
        f"-ot {options['dtype'].capitalize()} {' '.join(creation)} {vrt} {output}"
    )
    return ["sh", "-c", f"{build} && {translate}"]


# Children start from a small forkserver worker (see launcher.py), never from this process
# once it has read large rasters.
LAUNCHER = multiprocessing.get_context("forkserver")


def measure(method: str, sources: list[str], options: dict) -> dict:
    """Run one method in its own process: wall time, peak RSS, output size and path."""
    work = tempfile.mkdtemp(prefix=f"{method}-", dir=CACHE / "runs")
    output = os.path.join(work, "out.tif")
    if method == "gdal":
        command = gdal_command(sources, output, options)
    else:
        payload = json.dumps(dict(sources=sources, output=output, options=options))
        command = [sys.executable, __file__, "--child", method, payload]
    with LAUNCHER.Pool(1) as pool:
        wall, status, rss_mb = pool.apply(launch, (command,))
    if status:
        sys.exit(f"{method} failed with status {status}")
    return dict(wall=wall, rss_mb=rss_mb, bytes=os.path.getsize(output), path=output)


# -- checks --------------------------------------------------------------------------------


def pixel_equal(path_a: str, path_b: str) -> bool:
    """Full resolutions equal, NaN positions included (read in bands: bounded memory)."""
    with rasterio.open(path_a) as a, rasterio.open(path_b) as b:
        if (a.width, a.height) != (b.width, b.height) or not a.transform.almost_equals(b.transform):
            return False
        for top in range(0, a.height, 512):
            window = Window(0, top, a.width, min(512, a.height - top))
            if not np.array_equal(
                a.read(1, window=window), b.read(1, window=window), equal_nan=True
            ):
                return False
    return True


def overview_error(path: str, factor: int = 8) -> str:
    """Mean absolute error of the ``factor`` overview against the true area mean of the full
    resolution, and how many overview pixels are negative (the data has none)."""
    with rasterio.open(path) as full:
        if factor not in full.overviews(1):
            return f"{'n/a':>14} {'n/a':>4}"
        level = full.overviews(1).index(factor)
        with rasterio.open(path, overview_level=level) as overview:
            cols = min(full.width // factor, overview.width)
            last = (full.height // factor) * factor
            errors, count, negative = 0.0, 0, 0
            for top in range(0, last, 512):
                rows = min(512, last - top) // factor
                band = full.read(1, window=Window(0, top, cols * factor, rows * factor))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks
                    truth = np.nanmean(band.reshape(rows, factor, cols, factor), axis=(1, 3))
                values = overview.read(1, window=Window(0, top // factor, cols, rows))
                both = ~np.isnan(truth) & ~np.isnan(values)
                errors += float(np.abs(values[both] - truth[both]).sum())
                count += int(both.sum())
                negative += int((values < 0).sum())
    return f"{errors / max(count, 1):14.6f} {negative:4d}"


# -- reports -------------------------------------------------------------------------------


def compare_methods(sizes: list[int], rows, options: dict, repeat: int) -> dict:
    results = {}
    for size in sizes:
        sources = subset(rows, size)
        runs = {method: [] for method in METHODS}
        for _ in range(repeat):
            for method in METHODS:
                runs[method].append(measure(method, sources, options))
        median = {
            method: {
                key: statistics.median(run[key] for run in runs[method])
                for key in runs[method][0]
                if key != "path"
            }  # fmt: skip
            for method in METHODS
        }
        paths = {method: runs[method][-1]["path"] for method in METHODS}
        with rasterio.open(paths["etm"]) as cog:
            shape = f"{cog.width} x {cog.height} {cog.dtypes[0]}"
        print(f"\n{size} chips -> {shape}, median of {repeat}")
        print(
            f"{'method':7} {'wall s':>7} {'etm/this':>9} {'peak RSS MB':>12} {'size MB':>8} "
            f"{'pixel-equal':>12} {'8x ovr MAE mm':>14} {'<0':>4}"
        )
        equal = {method: pixel_equal(paths["etm"], paths[method]) for method in METHODS}
        for method in METHODS:
            m = median[method]
            print(
                f"{method:7} {m['wall']:7.2f} {median['etm']['wall'] / m['wall']:9.2f} "
                f"{m['rss_mb']:12.0f} {m['bytes'] / 1e6:8.1f} "
                f"{'yes' if equal[method] else 'NO':>12} {overview_error(paths[method])}"
            )
        paired = [e["wall"] / g["wall"] for e, g in zip(runs["etm"], runs["gdal"], strict=True)]
        results[size] = dict(median=median, paired=paired, equal=all(equal.values()))
    return results


def tile_cogs(rows: list[list[Path]], options: dict, folder: Path) -> list[str]:
    """The block's 15 tile COGs in a folder, built with ``options`` where not there yet."""
    from etm.cog import build_cog

    folder.mkdir(parents=True, exist_ok=True)
    tiles = []
    for tile_row in range(0, BLOCK[0], 5):
        for tile_col in range(0, BLOCK[1], 5):
            path = folder / f"tile{tile_row}_{tile_col}.tif"
            if not path.exists():
                chips = block(rows, tile_row, tile_col, 5)
                build_cog(chips, str(path), tmpdir=str(folder), **options)
            tiles.append(str(path))
    return tiles


def region_from_tiles(rows, options: dict) -> None:
    """The 375-chip region from its 15 tile COGs (as the workflow does) against from chips."""
    tiles = tile_cogs(rows, options, Path(tempfile.mkdtemp(prefix="region-", dir=CACHE / "runs")))
    from_tiles = measure("etm", tiles, options)
    direct = measure("etm", subset(rows, 375), options)
    equal = pixel_equal(direct["path"], from_tiles["path"])
    print(
        f"\nregion of 375 chips: from its 15 tile COGs {from_tiles['wall']:.1f} s, "
        f"{from_tiles['rss_mb']:.0f} MB; from the chips {direct['wall']:.1f} s, "
        f"{direct['rss_mb']:.0f} MB; pixel-equal: {'yes' if equal else 'NO'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[25, 100, 375], choices=SUBSETS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="one tile of coarse chips, once")
    parser.add_argument(
        "--threads", type=int, help="threads of each method (default: mosaic_threads)"
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        method, payload = args.child
        job = json.loads(payload)
        {"etm": run_etm, "merge": run_merge}[method](job["sources"], job["output"], job["options"])
        return
    LAUNCHER.set_forkserver_preload([])
    from etm.sample import MODEL_PIXEL

    pixel = MODEL_PIXEL * (10 if args.smoke else 1)
    sizes, repeat = ([25], 1) if args.smoke else (args.sizes, args.repeat)
    options = workflow_settings()
    options["threads"] = args.threads or options["threads"]
    cli = subprocess.run(["gdalinfo", "--version"], capture_output=True, text=True).stdout
    print(
        f"{time.strftime('%Y-%m-%d')} {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, rasterio {rasterio.__version__} "
        f"(GDAL {rasterio.__gdal_version__}), command line: {cli.strip()}"
    )
    print(f"workflow defaults: {options}")
    shutil.rmtree(CACHE / "runs", ignore_errors=True)
    (CACHE / "runs").mkdir(parents=True)
    rows = ensure_chips(CACHE / f"chips-{pixel:.10f}", pixel)
    results = compare_methods(sizes, rows, options, repeat)
    if 375 in sizes:
        region_from_tiles(rows, options)
    shutil.rmtree(CACHE / "runs")
    print("\ngoals:")
    for size, result in results.items():
        median, paired = result["median"], result["paired"]
        print(
            f"  {size} chips: wall {statistics.median(paired):.2f} ({min(paired):.2f}-"
            f"{max(paired):.2f}) x the GDAL command line's, paired by repeat (goal <= 0.9), "
            f"peak memory {median['etm']['rss_mb']:.0f} MB "
            f"(goal <= 400), pixel-equal: {'yes' if result['equal'] else 'NO'}"
        )
    if not all(result["equal"] for result in results.values()):
        sys.exit("outputs differ")


if __name__ == "__main__":
    main()
