"""Time, CPU and peak memory of `snakemake -n` over a synthetic archive of 1,080,000 chips,
for etm's workflow and for a plain Snakefile of the same DAG.

The layout is the team's: 15 tiles of 25 chips (375), 12 products, 20 years, 12 months,
as empty local files (a dry run lists and stats chips, it never reads them). It is
generated once under benchmarks/cache/ (git-ignored). Local files measure Snakemake's and
etm's own cost; S3 request counts are measured by benchmarks/s3_requests.py.

The baselines are what a team would write with Snakemake alone: the same rules, wildcards,
inputs, outputs and logs (25 chips and a baseline per tile-month, the tiles per
region-month, every Item for the catalog, the map page), with their threads and memory and
chip paths built by string formatting: no verifier, no chip listing, no checks. Two of
them: *plain script*, each rule running a Python script (`script:`); *plain shell*, the
baseline and mosaic rules calling the GDAL command line (`shell:` with gdalbuildvrt and
gdal_translate -of COG, gdalinfo for the Item and the baseline), the three single jobs
(heatmaps, catalog, map page) still scripts. All three run in rotating order, `--repeats`
times, each in its own process, with Snakemake's default rerun triggers and garbage
collection.

Usage: .venv/bin/python benchmarks/dry_run_1m.py [--years 20] [--tiles 15] [--repeats 3]
Prints: chips, jobs, wall, CPU-s and peak resident memory of each, and etm's paired ratios
against each baseline.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PRODUCTS = "etasw etasw5 etc netet srf dd rain swe snwpk snowmelt swi swf".split()
RUN = "ws-out/USA/Run08_18_2021"

# The same DAG as etm's `snakemake -n` with the team's config: rule names, wildcards,
# one job per tile-month, region-month, tile baseline, the heatmaps, the quicklooks and
# the catalog.
PLAIN_SNAKEFILE = """
TILES = config["tiles"]
PRODUCTS = config["products"]
YEARS = range(config["start_year"], config["end_year"] + 1)
PERIODS = [f"{year}{month:02d}" for year in YEARS for month in range(1, 13)]
OUT = "ws-enduser/USA/bench"
TILE = OUT + "/tiles/{tile}/{product}/{year}/{product}_{period}"
REGION = OUT + "/mosaic/{product}/{year}/{product}_{period}"

wildcard_constraints:
    tile="|".join(TILES),
    product="|".join(PRODUCTS),
    year=r"\\d{4}",
    period=r"\\d{6}",

rule all:
    input:
        expand(REGION + ".tif", zip, product=[p for p in PRODUCTS for _ in PERIODS],
               year=[s[:4] for _ in PRODUCTS for s in PERIODS],
               period=[s for _ in PRODUCTS for s in PERIODS]),
        OUT + "/catalog.json",
        "reports/heatmaps.png",
        expand(REGION + ".png", zip, product=[p for p in PRODUCTS for _ in PERIODS],
               year=[s[:4] for _ in PRODUCTS for s in PERIODS],
               period=[s for _ in PRODUCTS for s in PERIODS]),
        OUT + "/index.html",

rule chip_baseline:
    output: "baselines/{tile}.json"
    log: "logs/chip_baseline/{tile}.log"
    script: "job.py"

rule mosaic_tile:
    input:
        sources=lambda w: [
            f"{config['run']}/run_{w.tile}/{w.tile}/{chip}/{w.year}/{w.product}_{w.period}.tif"
            for chip in TILES[w.tile]
        ],
        baseline=ancient("baselines/{tile}.json"),
    output: cog=TILE + ".tif", item=TILE + ".json"
    log: "logs/mosaic_tile/{tile}/{year}/{product}_{period}.log"
    threads: 1
    resources: mem_mb=1280
    script: "job.py"

rule mosaic_region:
    input: expand(TILE + ".tif", tile=TILES, allow_missing=True)
    output: cog=REGION + ".tif", item=REGION + ".json"
    log: "logs/mosaic_region/{year}/{product}_{period}.log"
    threads: 1
    resources: mem_mb=1280
    script: "job.py"

rule quicklooks:
    input:
        expand(REGION + ".tif", zip, product=[p for p in PRODUCTS for _ in PERIODS],
               year=[s[:4] for _ in PRODUCTS for s in PERIODS],
               period=[s for _ in PRODUCTS for s in PERIODS]),
    output:
        expand(REGION + ".png", zip, product=[p for p in PRODUCTS for _ in PERIODS],
               year=[s[:4] for _ in PRODUCTS for s in PERIODS],
               period=[s for _ in PRODUCTS for s in PERIODS]),
    log: "logs/quicklooks.log"
    script: "job.py"

rule completeness:
    output: "reports/heatmaps.png"
    log: "logs/completeness.log"
    script: "job.py"

rule stac_catalog:
    input:
        expand(TILE + ".json", zip, tile=[t for t in TILES for _ in PRODUCTS for _ in PERIODS],
               product=[p for _ in TILES for p in PRODUCTS for _ in PERIODS],
               year=[s[:4] for _ in TILES for _ in PRODUCTS for s in PERIODS],
               period=[s for _ in TILES for _ in PRODUCTS for s in PERIODS]),
        expand(REGION + ".json", zip, product=[p for p in PRODUCTS for _ in PERIODS],
               year=[s[:4] for _ in PRODUCTS for s in PERIODS],
               period=[s for _ in PRODUCTS for s in PERIODS]),
    output: OUT + "/catalog.json"
    log: "logs/stac_catalog.log"
    script: "job.py"

rule map_page:
    input: ancient(OUT + "/catalog.json")
    output: OUT + "/index.html"
    log: "logs/map_page.log"
    script: "job.py"
"""


#: The same DAG with the `shell:` rules a user would write with the GDAL command line.
SHELL = {
    "chip_baseline": (
        '"gdalinfo -json -stats {config[run]}/run_{wildcards.tile}/{wildcards.tile}/'
        '{config[first_chip]} > {output} 2> {log}"'
    ),
    "mosaic_tile": (
        '"(gdalbuildvrt {output.cog}.vrt {input.sources} && gdal_translate -of COG '
        "-co COMPRESS=ZSTD -co LEVEL=9 -co PREDICTOR=FLOATING_POINT -co RESAMPLING=AVERAGE "
        "{output.cog}.vrt {output.cog} && gdalinfo -json {output.cog} > {output.item} && "
        'rm {output.cog}.vrt) > {log} 2>&1"'
    ),
    "mosaic_region": (
        '"(gdalbuildvrt {output.cog}.vrt {input} && gdal_translate -of COG '
        "-co COMPRESS=ZSTD -co LEVEL=9 -co PREDICTOR=FLOATING_POINT -co RESAMPLING=AVERAGE "
        "{output.cog}.vrt {output.cog} && gdalinfo -json {output.cog} > {output.item} && "
        'rm {output.cog}.vrt) > {log} 2>&1"'
    ),
    "quicklooks": (
        '"(for cog in {input}; do gdal_translate -of PNG -outsize 800 0 -scale '
        '$cog ${{cog%.tif}}.png; done) > {log} 2>&1"'
    ),
}


def shell_snakefile() -> str:
    """PLAIN_SNAKEFILE with the baseline and mosaic rules as `shell:` GDAL commands."""
    rules = PLAIN_SNAKEFILE.split("\nrule ")
    for index, rule in enumerate(rules):
        name = rule.split(":", 1)[0]
        if name in SHELL:
            rules[index] = rule.replace('script: "job.py"', f"shell: {SHELL[name]}")
    return "\nrule ".join(rules)


def tile_names(count: int) -> list[str]:
    return [f"r50.0_tile{n}" for n in range(1, count + 1)]


def tile_chips(count: int) -> dict[str, list[str]]:
    """Each tile's 25 chip folders: squares of one 10-degree tile grid (through -116.8,
    47.4), which the verifier learns from them."""
    chips = {}
    for index, tile in enumerate(tile_names(count)):
        north, west = 47.4 - 10 * (index // 6), -126.8 + 10 * (index % 6)
        chips[tile] = [
            f"chip{north - 2 * row:.1f}N{west + 2 * col:.1f}E"
            for row in range(5)
            for col in range(5)
        ]
    return chips


def generate(root: Path, tiles: int, years: range) -> int:
    """Empty chip files at the model's paths; returns how many (skips if already there)."""
    done = root / ".done"
    chips = tiles * 25 * len(PRODUCTS) * len(years) * 12
    if done.exists():
        return chips
    for tile, names in tile_chips(tiles).items():
        for chip in names:
            for year in years:
                folder = root / RUN / f"run_{tile}" / tile / chip / f"{year}"
                folder.mkdir(parents=True, exist_ok=True)
                for product in PRODUCTS:
                    for month in range(1, 13):
                        (folder / f"{product}_{year}{month:02d}.tif").touch()
    done.touch()
    return chips


def layout_root(tiles: int, years: int) -> Path:
    """Where the synthetic archive of so many tiles and years is generated."""
    return REPO / "benchmarks" / "cache" / f"grid-{tiles}-tiles-{years}-years"


def dry_run(root: Path, snakefile: Path, configfile: str) -> tuple[int, float, float, float]:
    """Jobs, wall s, CPU-s (user + system) and peak RSS MB of one `snakemake -n`."""
    command = [
        str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(snakefile),
        "-n", "--quiet", "rules", "--configfile", configfile,
    ]  # fmt: skip
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if status:
        sys.exit(f"{snakefile} failed:\n{output[-3000:]}")
    jobs = re.search(r"^total\s+(\d+)", output, re.MULTILINE)
    return int(jobs[1]), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def spread(values: list[float], digits: int = 1) -> str:
    low, mid, high = (
        f"{v:.{digits}f}" for v in (min(values), statistics.median(values), max(values))
    )
    return f"{mid} ({low}-{high})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=15)
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = layout_root(args.tiles, args.years)
    years = range(2001, 2001 + args.years)
    start = time.perf_counter()
    chips = generate(root, args.tiles, years)
    print(f"layout: {chips:,} chips under {root} ({time.perf_counter() - start:.0f} s to ensure)")
    config = {
        "products": PRODUCTS,
        "start_year": years.start,
        "end_year": years.stop - 1,
        "unmosaicked_inputs": [f"{RUN}/run_{t}/{t}/" for t in tile_names(args.tiles)],
        "enduser_cog_output": "ws-enduser/USA/bench/",
    }
    (root / "bench.yaml").write_text(yaml.safe_dump(config))
    chips = tile_chips(args.tiles)
    first = f"{chips[tile_names(1)[0]][0]}/{years.start}/{PRODUCTS[0]}_{years.start}01.tif"
    plain = {**config, "run": RUN, "tiles": chips, "first_chip": first}
    (root / "plain.yaml").write_text(yaml.safe_dump(plain))
    (root / "plain.smk").write_text(PLAIN_SNAKEFILE)
    (root / "plain-shell.smk").write_text(shell_snakefile())
    (root / "job.py").write_text("# never run: a dry run only plans the jobs\n")
    methods = {
        "etm": (REPO / "Snakefile", "bench.yaml"),
        "plain script": (root / "plain.smk", "plain.yaml"),
        "plain shell": (root / "plain-shell.smk", "plain.yaml"),
    }
    runs: dict[str, list[tuple[int, float, float, float]]] = {name: [] for name in methods}
    for repeat in range(args.repeats):
        names = list(methods)
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in order:
            runs[name].append(dry_run(root, *methods[name]))
            print(f"  run {repeat + 1} {name}: {runs[name][-1][1]:.0f} s", flush=True)
    print(f"\nsnakemake -n --quiet rules, median (min-max) of {args.repeats}, in turn")
    print(f"{'Snakefile':<14}{'jobs':>8}{'wall s':>22}{'CPU-s':>22}{'peak RSS MB':>14}")
    for name, results in runs.items():
        jobs, walls, cpus, rss = zip(*results, strict=True)
        print(f"{name:<14}{jobs[0]:>8,}{spread(walls):>22}{spread(cpus):>22}{max(rss):>14,.0f}")
    for baseline in ("plain script", "plain shell"):
        for column, label in ((1, "wall"), (2, "CPU")):
            ratios = [
                e[column] / p[column] for e, p in zip(runs["etm"], runs[baseline], strict=True)
            ]
            print(f"etm/{baseline} {label} (paired): {spread(ratios, 2)}")
    print(f"goal: etm no slower than plain Snakemake ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
