"""Time and peak memory of `snakemake -n` over a synthetic archive of 1,080,000 chips.

The layout is the team's: 15 tiles of 25 chips (375), 12 products, 20 years, 12 months,
as empty local files (a dry run lists and stats chips, it never reads them). It is
generated once under benchmarks/cache/ (git-ignored). Local files measure Snakemake's and
etm's own cost; S3 request counts are measured by benchmarks/s3_requests.py.

Usage: .venv/bin/python benchmarks/dry_run_1m.py [--years 20] [--tiles 15]
Prints: chips, jobs, wall time and peak resident memory of the snakemake process.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PRODUCTS = "etasw etasw5 etc netet srf dd rain swe snwpk snowmelt swi swf".split()


def tile_names(count: int) -> list[str]:
    return [f"r50.0_tile{n}" for n in range(1, count + 1)]


def generate(root: Path, tiles: int, years: range) -> int:
    """Empty chip files at the model's paths; returns how many (skips if already there)."""
    done = root / ".done"
    chips = tiles * 25 * len(PRODUCTS) * len(years) * 12
    if done.exists():
        return chips
    for index, tile in enumerate(tile_names(tiles)):
        # Squares of the team's tile grid (config key tile_grid: origin -116.8, 47.4).
        north, west = 47.4 - 10 * (index // 6), -126.8 + 10 * (index % 6)
        for row in range(5):
            for col in range(5):
                chip = f"chip{north - 2 * row:.1f}N{west + 2 * col:.1f}E"
                for year in years:
                    folder = (
                        root
                        / "ws-out"
                        / "USA"
                        / "Run08_18_2021"
                        / f"run_{tile}"
                        / tile
                        / chip
                        / f"{year}"
                    )
                    folder.mkdir(parents=True, exist_ok=True)
                    for product in PRODUCTS:
                        for month in range(1, 13):
                            (folder / f"{product}_{year}{month:02d}.tif").touch()
    done.touch()
    return chips


def layout_root(tiles: int, years: int) -> Path:
    """Where the synthetic archive of so many tiles and years is generated."""
    return REPO / "benchmarks" / "cache" / f"grid-{tiles}-tiles-{years}-years"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=15)
    parser.add_argument("--years", type=int, default=20)
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
        "unmosaicked_inputs": [
            f"ws-out/USA/Run08_18_2021/run_{t}/{t}/" for t in tile_names(args.tiles)
        ],
        "enduser_cog_output": "ws-enduser/USA/bench/",
    }
    (root / "bench.yaml").write_text(yaml.safe_dump(config))
    command = [
        str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(REPO / "Snakefile"),
        "-n", "--quiet", "rules", "--configfile", "bench.yaml",
    ]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, cwd=root, capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if result.returncode:
        sys.exit(result.stderr[-3000:])
    jobs = re.search(r"^total\s+(\d+)", result.stdout + result.stderr, re.MULTILINE)
    jobs = jobs and jobs[1]
    print(f"snakemake -n --quiet rules: {jobs} jobs, {wall:.0f} s, peak RSS {peak_mb:,.0f} MB")
    print(f"goals: under 180 s and under 4,096 MB on this machine ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
