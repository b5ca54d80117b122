"""Archive rebuild at real chip size: the workflow through `snakemake`, beside the GDAL CLI
and bare ``build_cog``, then the encodings priced at the team's scale.

A scaled-down archive of real-size chips (961 x 961 float64, as the model writes them; by
default 2 tiles x 1 product x 6 months = 12 tile-months of 25 chips, 2.2 GB) is generated
once under benchmarks/cache/ (git-ignored). Then, repeated, in rotating order:

1. workflow: ``snakemake --cores N --until mosaic_tile`` on a fresh output folder: chip
   baselines, checks and every tile-month COG with its STAC Item, config defaults;
2. gdal: each tile-month through gdalbuildvrt + gdal_translate -of COG, same creation
   options and threads, N tile-months at a time;
3. bare: each tile-month through etm.cog.build_cog (chips checked) in one process, N at a
   time in threads, as the workflow runs its jobs (the yardstick of its overhead);
4. bare 1: the same, one tile-month after the other.

CPU-seconds are user + system of the command and every process it waited for; peak RSS is
that of the largest single process. Then one tile-month's levels are compressed with each
lossless encoding on one thread, and priced for the team's rebuild (18 tiles x 12 products
x 20 years: 51,840 tile-months, and 2,880 region-months of 18 tiles' pixels each).

Usage: .venv/bin/python benchmarks/rebuild.py [--tiles 2] [--months 6] [--repeat 3] [--cores 2]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import rasterio
import rasterio.shutil
import yaml
from mosaic_speed import gdal_command, workflow_settings

from etm.checks import ChipExpectation
from etm.cog import READ_CACHE_MB, build_cog, cache_bytes, creation_options, vrt_with_overviews
from etm.grid import Chip, chip_name
from etm.mosaic import write_levels
from etm.sample import MODEL_PIXEL, TILE_CORNERS, tile_prefix, write_sample

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "benchmarks" / "cache" / "rebuild"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
PRODUCT, YEAR = "etasw", 2020
TEAM_TILE_MONTHS, TEAM_REGION_MONTHS, TEAM_TILES = 18 * 12 * 20 * 12, 12 * 20 * 12, 18
ENCODINGS = [
    ("ZSTD", 1), ("ZSTD", 3), ("ZSTD", 6), ("ZSTD", 9), ("ZSTD", 12), ("ZSTD", 15),
    ("ZSTD", 18), ("DEFLATE", 1), ("DEFLATE", 6), ("DEFLATE", 9), ("LZW", None),
]  # fmt: skip


def archive_root(tiles: list[str], months: list[int], pixel: float) -> Path:
    return CACHE / f"{len(tiles)}x{len(months)}-{pixel:.10f}"


def archive(tiles: list[str], months: list[int], pixel: float) -> dict[tuple[str, int], list[str]]:
    """Each tile-month's chip files, in the workflow's order (generated once)."""
    root = archive_root(tiles, months, pixel)
    if not (root / ".written").exists():
        shutil.rmtree(root, ignore_errors=True)
        write_sample(
            str(root), products=(PRODUCT,), years=(YEAR,), months=tuple(months),
            pixel=pixel, decoys=False, tiles=tuple(tiles),
        )  # fmt: skip
        (root / ".written").touch()
    chips = {}
    for tile in tiles:
        prefix = Path(tile_prefix(str(root), tile))
        for month in months:
            chips[tile, month] = sorted(
                str(path) for path in prefix.glob(f"chip*/{YEAR}/{PRODUCT}_{YEAR}{month:02d}.tif")
            )
    return chips


def run(command: list[str], **kwargs) -> tuple[float, float]:
    """Run a command to its end: CPU seconds and peak RSS (MB) of it and what it waited for."""
    process = subprocess.Popen(command, **kwargs)
    _pid, status, usage = os.wait4(process.pid, 0)
    if status:
        sys.exit(f"{command[0]} failed with status {status}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def timed(commands: list[list[str]], side_by_side: int = 1, **kwargs) -> dict:
    """Run commands, ``side_by_side`` at a time: wall, total CPU, peak RSS of one process."""
    start = time.perf_counter()
    with ThreadPoolExecutor(side_by_side) as pool:
        results = list(pool.map(lambda command: run(command, **kwargs), commands))
    return dict(
        wall=time.perf_counter() - start,
        cpu=sum(cpu for cpu, _ in results),
        rss_mb=max(rss for _, rss in results),
    )


def run_workflow(tiles: list[str], months: list[int], cores: int, pixel: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="workflow-", dir=CACHE / "runs"))
    root = archive_root(tiles, months, pixel)
    config = dict(
        products=[PRODUCT], start_year=YEAR, end_year=YEAR, months=months,
        unmosaicked_inputs=[tile_prefix(str(root), tile) + "/" for tile in tiles],
        enduser_cog_output=str(work / "out") + "/", max_concurrent_containers=60,
    )  # fmt: skip
    (work / "bench.yaml").write_text(yaml.safe_dump(config))
    command = [
        str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--profile",
        str(REPO / "profiles" / "local"), "--cores", str(cores), "--configfile", "bench.yaml",
        "--until", "mosaic_tile", "--quiet", "all",
    ]  # fmt: skip
    result = timed([command], cwd=work, stdout=subprocess.DEVNULL)
    cogs = list((work / "out").rglob("*.tif"))
    if len(cogs) != len(tiles) * len(months):
        sys.exit(f"the workflow published {len(cogs)} COGs, not {len(tiles) * len(months)}")
    shutil.rmtree(work)
    return result


def run_gdal(chips: dict, options: dict, cores: int) -> dict:
    """Every tile-month through the GDAL CLI, as many side by side as the workflow runs."""
    work = Path(tempfile.mkdtemp(prefix="gdal-", dir=CACHE / "runs"))
    commands = []
    for tile, month in chips:
        folder = work / f"{tile}_{month}"
        folder.mkdir()
        commands.append(gdal_command(chips[tile, month], str(folder / "out.tif"), options))
    result = timed(commands, side_by_side=cores)
    shutil.rmtree(work)
    return result


def run_bare(tiles: list[str], months: list[int], pixel: float, side_by_side: int) -> dict:
    child = ["--bare", ",".join(tiles), *map(str, months), "--pixel", str(pixel)]
    return timed([[sys.executable, __file__, *child, "--cores", str(side_by_side)]])


def bare(tiles: list[str], months: list[int], pixel: float, side_by_side: int) -> None:
    """One process: every tile-month through build_cog, as the workflow's jobs call it,
    ``side_by_side`` at a time in threads."""
    options = workflow_settings()
    chip_size = 20  # tenths of a degree: the model's 2-degree chips
    work = tempfile.mkdtemp(prefix="bare-", dir=CACHE / "runs")

    def build(tile_month: tuple[str, int], sources: list[str]) -> None:
        chips = [ChipExpectation(Chip.parse(chip_name(path)), chip_size) for path in sources]
        output = os.path.join(work, "{}_{}.tif".format(*tile_month))
        build_cog(sources, output, chips=chips, tmpdir=work, **options)

    chips = archive(tiles, months, pixel)
    with ThreadPoolExecutor(side_by_side) as pool:
        list(pool.map(build, chips.keys(), chips.values()))
    shutil.rmtree(work)


def spread(values: list[float], digits: int = 1) -> str:
    """Median (min-max)."""
    median, low, high = statistics.median(values), min(values), max(values)
    return f"{median:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def compare_methods(tiles, months, cores: int, repeat: int, pixel: float) -> dict:
    chips = archive(tiles, months, pixel)
    options = {**workflow_settings()}
    methods = {
        "workflow": lambda: run_workflow(tiles, months, cores, pixel),
        "gdal": lambda: run_gdal(chips, options, cores),
        "bare": lambda: run_bare(tiles, months, pixel, cores),
        "bare 1": lambda: run_bare(tiles, months, pixel, 1),
    }
    runs = {method: [] for method in methods}
    order = list(methods)
    for index in range(repeat):
        turn = index % len(order)
        for method in order[turn:] + order[:turn]:  # rotate: no method always first
            runs[method].append(methods[method]())
    count = len(chips)
    print(
        f"\n{count} tile-months ({len(tiles)} tiles x {len(months)} months, 25 chips each), "
        f"--cores {cores}, mosaic_threads {options['threads']}, "
        f"{options['compress']} {options['level']}; median (min-max) of {repeat}"
    )
    print(
        f"{'method':9} {'wall s':>20} {'CPU-s':>20} {'CPU-s/tile-month':>17} "
        f"{'cores used':>11} {'peak RSS MB':>12}"
    )
    for method, results in runs.items():
        walls = [r["wall"] for r in results]
        cpus = [r["cpu"] for r in results]
        used = statistics.median(r["cpu"] / r["wall"] for r in results)
        print(
            f"{method:9} {spread(walls):>20} {spread(cpus):>20} "
            f"{statistics.median(cpus) / count:17.2f} {used:11.2f} "
            f"{max(r['rss_mb'] for r in results):12.0f}"
        )
    paired = [w["cpu"] / b["cpu"] for w, b in zip(runs["workflow"], runs["bare"], strict=True)]
    in_turn = [w["cpu"] / b["cpu"] for w, b in zip(runs["workflow"], runs["bare 1"], strict=True)]
    walls = [w["wall"] / g["wall"] for w, g in zip(runs["workflow"], runs["gdal"], strict=True)]
    jobs = count + len(tiles)  # tile-months and the tiles' chip baselines
    overhead = [
        (w["cpu"] - b["cpu"]) / jobs for w, b in zip(runs["workflow"], runs["bare"], strict=True)
    ]
    used = [r["cpu"] / r["wall"] / cores for r in runs["workflow"]]
    print(f"workflow/bare CPU (paired): {spread(paired, 2)}   goal <= 1.10")
    print(f"workflow/bare 1 CPU (paired): {spread(in_turn, 2)}")
    print(f"workflow overhead per job: {spread(overhead, 2)} CPU-s, {jobs} jobs   goal < 0.5")
    print(f"workflow/gdal wall (paired): {spread(walls, 2)}")
    print(f"workflow share of the cores busy: {spread(used, 2)}   goal > 0.90")
    return dict(runs=runs, count=count)


def compare_encodings(tiles, months, pixel: float, workflow_cpu_per_tile_month: float) -> None:
    """Each lossless encoding of one tile-month's levels, one thread, priced at team scale."""
    options = workflow_settings()
    sources = next(iter(archive(tiles, months, pixel).values()))
    with tempfile.TemporaryDirectory(prefix="encodings-", dir=CACHE / "runs") as scratch:
        with rasterio.Env(GDAL_CACHEMAX=cache_bytes(READ_CACHE_MB)):
            mosaic = write_levels(
                sources, scratch, dtype=options["dtype"], blocksize=options["blocksize"]
            )
        vrt = os.path.join(scratch, "mosaic.vrt")
        Path(vrt).write_text(vrt_with_overviews(mosaic, options["dtype"]))
        raw = sum(os.path.getsize(path) for path in mosaic.levels)
        measured = {}
        for compress, level in ENCODINGS:
            output = os.path.join(scratch, "out.tif")
            cog = creation_options(
                compress=compress, level=level or 1, predictor=options["predictor"],
                blocksize=options["blocksize"], threads=1,
            )  # fmt: skip
            before = resource.getrusage(resource.RUSAGE_SELF)
            with rasterio.Env(GDAL_CACHEMAX=cache_bytes(options["gdal_cache_mb"])):
                rasterio.shutil.copy(vrt, output, driver="COG", **cog)
            after = resource.getrusage(resource.RUSAGE_SELF)
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            measured[compress, level] = (cpu, os.path.getsize(output))
            os.remove(output)
    default = measured[options["compress"], options["level"]]
    rest = workflow_cpu_per_tile_month - default[0]  # reading, checks, levels, job overhead
    pixels = TEAM_TILE_MONTHS + TEAM_REGION_MONTHS * TEAM_TILES  # in tile-months of pixels
    print(
        f"\nEncodings of one tile-month's levels ({raw / 1e6:.1f} MB {options['dtype']}, "
        f"predictor {options['predictor']}), one thread, priced for the team's rebuild "
        f"({TEAM_TILE_MONTHS:,} tile-months + {TEAM_REGION_MONTHS:,} region-months of "
        f"{TEAM_TILES} tiles)"
    )
    print(
        f"{'encoding':11} {'MB/s/core':>9} {'size':>6} {'CPU-h compress':>14} "
        f"{'CPU-h rebuild':>13} {'TB stored':>9} {'region month MB':>15}"
    )
    for (compress, level), (cpu, size) in measured.items():
        name = f"{compress} {level}" if level else compress
        default_marker = (compress, level) == (options["compress"], options["level"])
        marker = " <- default" if default_marker else ""
        print(
            f"{name:11} {raw / 1e6 / cpu:9.1f} {size / default[1]:6.0%} "
            f"{cpu * pixels / 3600:14.1f} {(cpu + rest) * pixels / 3600:13.1f} "
            f"{size * pixels / 1e12:9.2f} {size * TEAM_TILES / 1e6:15.1f}{marker}"
        )
    print(
        "size: against the default. CPU-h rebuild: the workflow's measured CPU per tile-month "
        "with this compression instead of the default's; region months counted as 18 "
        "tile-months of pixels. region month MB: what a user downloads for one month of the "
        "region."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=2, choices=range(1, len(TILE_CORNERS) + 1))
    parser.add_argument("--months", type=int, default=6, choices=range(1, 13))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="1 tile, 2 months of coarse chips")
    parser.add_argument("--bare", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--pixel", type=float, default=MODEL_PIXEL, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        tiles, months = args.bare[0].split(","), [int(m) for m in args.bare[1:]]
        return bare(tiles, months, args.pixel, args.cores)
    if args.smoke:
        args.tiles, args.months, args.repeat, args.pixel = 1, 2, 1, 10 * MODEL_PIXEL
    tiles = list(TILE_CORNERS)[: args.tiles]
    months = list(range(1, args.months + 1))
    (CACHE / "runs").mkdir(parents=True, exist_ok=True)
    print(
        f"{datetime.date.today()}, {platform.node()}: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, GDAL {rasterio.__gdal_version__}"
    )
    archive(tiles, months, args.pixel)
    results = compare_methods(tiles, months, args.cores, args.repeat, args.pixel)
    per_tile_month = statistics.median(r["cpu"] for r in results["runs"]["workflow"])
    compare_encodings(tiles, months, args.pixel, per_tile_month / results["count"])


if __name__ == "__main__":
    main()
