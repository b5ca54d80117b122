"""S3 requests of a dry run (`snakemake -n`) per chip: etm-s3 beside the plain S3 plugin.

Uploads a layout of 21,600 chips (2 tiles of 25 chips, 12 products, 3 years, 12 months;
empty objects, since a dry run never reads a chip) to moto's S3 server on loopback, then
runs the same dry run with `--default-storage-provider etm-s3` and with the plain `s3`
plugin, counting every request the server answers.

Usage: .venv/bin/python benchmarks/s3_requests.py [--years 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from s3server import S3Server  # noqa: E402

PRODUCTS = "etasw etasw5 etc netet srf dd rain swe snwpk snowmelt swi swf".split()
TILES = {"r50.0_tile5": (47.4, -116.8), "r50.0_tile6": (47.4, -106.8)}


def chip_keys(years: range) -> list[str]:
    keys = []
    for tile, (north, west) in TILES.items():
        for row in range(5):
            for col in range(5):
                chip = f"chip{north - 2 * row:.1f}N{west + 2 * col:.1f}E"
                for year in years:
                    for product in PRODUCTS:
                        for month in range(1, 13):
                            keys.append(
                                f"USA/Run08_18_2021/run_{tile}/{tile}/{chip}/{year}/"
                                f"{product}_{year}{month:02d}.tif"
                            )
    return keys


def dry_run(server: S3Server, work: Path, provider: str) -> tuple[float, dict]:
    server.reset_count()
    command = [
        str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(REPO / "Snakefile"),
        "-n", "--quiet", "rules", "--cores", "1", "--default-storage-provider", provider,
        "--default-storage-prefix", "s3://ws-work/etm", "--configfile", "bench.yaml",
    ]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(
        command, cwd=work, env={**os.environ, **server.environment}, capture_output=True, text=True
    )
    if result.returncode:
        sys.exit(result.stderr[-3000:])
    return time.perf_counter() - start, dict(server.count())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--years", type=int, default=3)
    args = parser.parse_args()
    years = range(2001, 2001 + args.years)
    server = S3Server()
    s3 = server.client()
    for bucket in ("ws-out", "ws-enduser", "ws-work"):
        s3.create_bucket(Bucket=bucket)
    keys = chip_keys(years)
    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket="ws-out", Key=key, Body=b""), keys))
    print(f"uploaded {len(keys):,} chips in {time.perf_counter() - start:.0f} s")
    work = REPO / "benchmarks" / "cache" / "s3-requests"
    work.mkdir(parents=True, exist_ok=True)
    config = {
        "products": PRODUCTS,
        "start_year": years.start,
        "end_year": years.stop - 1,
        "unmosaicked_inputs": [f"ws-out/USA/Run08_18_2021/run_{t}/{t}/" for t in TILES],
        "enduser_cog_output": "ws-enduser/USA/bench/",
    }
    (work / "bench.yaml").write_text(yaml.safe_dump(config))
    print(f"{'storage plugin':16} {'wall s':>7} {'requests':>9} {'per chip':>9}  by kind")
    for provider in ("etm-s3", "s3"):
        wall, counts = dry_run(server, work, provider)
        total = sum(counts.values())
        print(f"{provider:16} {wall:7.1f} {total:9,} {total / len(keys):9.4f}  {counts}")
    server.stop()


if __name__ == "__main__":
    main()
