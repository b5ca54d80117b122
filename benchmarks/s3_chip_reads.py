"""Download chips, or let GDAL read them from S3 (/vsis3/)? Measured on the loopback S3.

One tile-month of real-size chips (25 chips of about 961 x 961 float64, 7.4 MB each) is
uploaded to moto's S3 server; then, side by side, repeated:

1. download: each chip fetched with one GET (what the etm-s3 plugin does), then mosaicked
   from local files (Snakemake's default, retrieve=True);
2. /vsis3/: the mosaic step reads the chips straight from S3 through GDAL (retrieve=False).

Prints wall time (median), requests and bytes transferred per chip for each.
Usage: .venv/bin/python benchmarks/s3_chip_reads.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from s3server import S3Server  # noqa: E402

from etm.cog import build_cog  # noqa: E402
from etm.s3 import client, gdal_options  # noqa: E402
from etm.sample import MODEL_PIXEL, chip_grid, field, tile_chips, write_chip  # noqa: E402

COG = dict(
    dtype="float32", compress="DEFLATE", level=6, predictor="FLOATING_POINT", blocksize=512,
    gdal_cache_mb=256,
)  # fmt: skip


def download(keys: list[str], work: str, environment: dict) -> float:
    """Fetch every chip with one GET, then mosaic the local files; returns seconds."""
    os.environ.update(environment)
    s3 = client()
    start = time.perf_counter()
    local = []
    for key in keys:
        target = os.path.join(work, key.replace("/", "_"))
        with open(target, "wb") as out:
            out.write(s3.get_object(Bucket="ws-out", Key=key)["Body"].read())
        local.append(target)
    build_cog(local, os.path.join(work, "download.tif"), **COG)
    elapsed = time.perf_counter() - start
    for path in local:
        os.remove(path)
    return elapsed


def vsis3(keys: list[str], work: str, environment: dict) -> float:
    """Mosaic the chips straight from S3 through GDAL; returns seconds."""
    os.environ.update(environment)
    os.environ.update(gdal_options())
    start = time.perf_counter()
    build_cog([f"/vsis3/ws-out/{key}" for key in keys], os.path.join(work, "vsis3.tif"), **COG)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    server = S3Server()
    os.environ.update(server.environment)
    s3 = server.client()
    s3.create_bucket(Bucket="ws-out")
    work = Path(tempfile.mkdtemp(prefix="etm-bench-"))
    keys = []
    for chip in tile_chips("r50.0_tile6"):
        grid = chip_grid(chip, MODEL_PIXEL)
        path = work / f"{chip.name}.tif"
        write_chip(str(path), grid, field("etasw", 2020, 7, grid.lons, grid.lats))
        key = f"tile6/{chip.name}/2020/etasw_202007.tif"
        s3.upload_file(str(path), "ws-out", key)
        keys.append(key)
        path.unlink()
    chip_bytes = s3.head_object(Bucket="ws-out", Key=keys[0])["ContentLength"]

    results = {}
    for name, step in (("download", download), ("/vsis3/", vsis3)):
        times = []
        for _ in range(args.repeat):
            server.reset_count()
            # In a child process: GDAL's HTTP must not wait on this process's server thread.
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                times.append(pool.apply(step, (keys, str(work), server.environment)))
        counts = server.count()
        results[name] = (statistics.median(times), sum(counts.values()) / len(keys), dict(counts))
    print(f"25 chips of {chip_bytes / 1e6:.1f} MB, loopback S3 (moto), median of {args.repeat}")
    print(f"{'method':10} {'wall s':>7} {'requests/chip':>14}  requests")
    for name, (wall, per_chip, counts) in results.items():
        print(f"{name:10} {wall:7.2f} {per_chip:14.1f}  {counts}")
    print(f"ratio /vsis3/ : download = {results['/vsis3/'][0] / results['download'][0]:.2f}")
    server.stop()


if __name__ == "__main__":
    main()
