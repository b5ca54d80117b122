"""How many AWS Batch containers, and of what size, a rebuild of the team's archive takes.

A dry run with profiles/aws's jobs and cores over the synthetic archive of benchmarks/dry_run_1m.py
(empty local files; 18 tiles of 25 chips, 12 products, 20 years by default), counting the
group jobs Snakemake forms and the jobs submitted alone, next to the containers etm's
dry-run summary announces. The executor is cluster-generic, since etm-batch needs S3;
Snakemake forms the same group jobs whatever the remote executor.

Usage: .venv/bin/python benchmarks/batch_containers.py [--tiles 18] [--years 20] [--annual]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml
from dry_run_1m import PRODUCTS, REPO, generate, layout_root, tile_names

PROFILE = yaml.safe_load((REPO / "profiles" / "aws" / "config.yaml").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=18)
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--annual", action="store_true", help="also the yearly COGs")
    args = parser.parse_args()
    root = layout_root(args.tiles, args.years)
    years = range(2001, 2001 + args.years)
    chips = generate(root, args.tiles, years)
    config = {
        "products": PRODUCTS, "start_year": years.start, "end_year": years.stop - 1,
        "unmosaicked_inputs": [
            f"ws-out/USA/Run08_18_2021/run_{t}/{t}/" for t in tile_names(args.tiles)
        ],
        "enduser_cog_output": "ws-enduser/USA/bench/", "annual": args.annual,
    }  # fmt: skip
    (root / "batch.yaml").write_text(yaml.safe_dump(config))
    # A remote executor that works on local files (etm-batch needs S3): the workflow forms
    # the same group jobs whatever the executor.
    command = [
        str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(REPO / "Snakefile"),
        "-n", "--executor", "cluster-generic", "--cluster-generic-submit-cmd", "true",
        "--jobs", str(PROFILE["jobs"]), "--cores", str(PROFILE["cores"]),
        "--configfile", "batch.yaml",
    ]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, cwd=root, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode:
        sys.exit(result.stderr[-3000:])
    output = result.stdout + result.stderr
    groups = len(re.findall(r"Group job \S+ \(jobs in lexicogr. order\)", output))
    alone = len(re.findall(r"^rule chip_baseline:$", output, re.MULTILINE))
    announced = re.search(r"^etm: ([0-9,]+ containers to submit .*)$", output, re.MULTILINE)[1]
    print(f"layout: {chips:,} chips, {args.tiles} tiles, {len(PRODUCTS)} products, "
          f"{args.years} years{', annual COGs' if args.annual else ''}")  # fmt: skip
    print(f"dry run: {wall:.0f} s; Snakemake forms {groups:,} group jobs and submits {alone} "
          f"jobs alone: {groups + alone:,} containers")  # fmt: skip
    print(f"etm's summary: {announced}")


if __name__ == "__main__":
    main()
