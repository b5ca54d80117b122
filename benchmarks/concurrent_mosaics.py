"""Mosaics built side by side in threads of one process, as the workflow runs its jobs: are
their overview levels right?

GDAL's block cache is shared by every thread of a process. A block written in parts and
evicted by another thread between its parts can lose its first part (GDAL #2011). Each
round builds three mosaics at once with etm.mosaic.write_levels: two 125-chip strips of the
region from tile COGs (the region job's case) and one 25-chip tile from chips, at real chip
size (the chips of benchmarks/mosaic_speed.py; the 15 tile COGs are built from them once).
Every overview level is then checked against the full resolution: an overview pixel is NaN
exactly where the full-resolution pixels it covers all are. Prints how many levels were
wrong; exits 1 if any.

With --check, checks COGs already published instead (local paths or GDAL paths such as
/vsis3/bucket/key.tif), one at a time, in memory: about 2 GB for a 375-chip region.

Usage: .venv/bin/python benchmarks/concurrent_mosaics.py [--rounds 8] [--cache-mb 64]
       .venv/bin/python benchmarks/concurrent_mosaics.py --check COG [COG ...]
       .venv/bin/python benchmarks/concurrent_mosaics.py --smoke    (coarse chips, for CI)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time

import numpy as np
import rasterio
from mosaic_speed import CACHE, block, ensure_chips, tile_cogs, workflow_settings


def all_nan_below(nan: np.ndarray) -> np.ndarray:
    """Where every pixel of each 2 x 2 block is NaN (an odd edge counts alone)."""
    rows, cols = nan.shape
    nan = np.pad(nan, ((0, rows % 2), (0, cols % 2)), constant_values=True)
    return nan[0::2, 0::2] & nan[1::2, 0::2] & nan[0::2, 1::2] & nan[1::2, 1::2]


def wrong_levels(levels: list[tuple[str, dict]]) -> list[int]:
    """The overview levels whose NaN are not where the full resolution's say they must be.

    ``levels`` are the path and rasterio.open keywords of each level, full resolution first.
    """
    wrong = []
    expected = None
    for index, (path, options) in enumerate(levels):
        with rasterio.open(path, **options) as level:
            nan = np.isnan(level.read(1))
        if expected is None:
            expected = nan
        else:
            expected = all_nan_below(expected)
            if not np.array_equal(nan, expected):
                wrong.append(index)
    return wrong


def built_wrong_levels(sources: list[str]) -> list[int]:
    """Build one mosaic's levels with etm and check them."""
    from etm.mosaic import write_levels

    folder = tempfile.mkdtemp(prefix="concurrent-", dir=CACHE)
    try:
        mosaic = write_levels(sources, folder, dtype="float32", blocksize=512)
        return wrong_levels([(path, {}) for path in mosaic.levels])
    finally:
        shutil.rmtree(folder)


def check_published(paths: list[str]) -> None:
    """Check COGs' overviews against their full resolution; exit 1 if one is wrong."""
    wrong = 0
    for path in paths:
        with rasterio.open(path) as cog:
            factors = cog.overviews(1)
        levels = [(path, {})] + [(path, {"overview_level": i}) for i in range(len(factors))]
        bad = wrong_levels(levels)
        wrong += bool(bad)
        named = ", ".join(f"{factors[level - 1]}x" for level in bad)
        verdict = (
            f"overviews {named} have NaN over valid pixels, or values over none" if bad else "ok"
        )
        print(f"{path}: {verdict}")
    if wrong:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--cache-mb", type=int, default=64, help="GDAL's block cache")
    parser.add_argument("--check", nargs="+", metavar="COG", help="check published COGs")
    parser.add_argument("--smoke", action="store_true", help="coarse chips, one round")
    args = parser.parse_args()
    if args.check:
        check_published(args.check)
        return
    from etm.cog import cache_bytes, tune_allocator
    from etm.sample import MODEL_PIXEL

    tune_allocator()
    pixel = MODEL_PIXEL * (10 if args.smoke else 1)
    rounds = 1 if args.smoke else args.rounds
    rows = ensure_chips(CACHE / f"chips-{pixel:.10f}", pixel)
    tiles = tile_cogs(rows, workflow_settings(), CACHE / f"tile-cogs-{pixel:.10f}")
    jobs = {"strip 1": tiles[:5], "strip 2": tiles[5:10], "tile": block(rows, 5, 10, 5)}
    failures = []
    start = time.perf_counter()
    with rasterio.Env(GDAL_CACHEMAX=cache_bytes(args.cache_mb)):
        for round_ in range(rounds):

            def build(name: str, sources: list[str], round_: int = round_) -> None:
                failures.extend((round_, name, level) for level in built_wrong_levels(sources))

            threads = [threading.Thread(target=build, args=job) for job in jobs.items()]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    built = rounds * len(jobs)
    print(
        f"{len(failures)} wrong overview levels in {built} mosaics built 3 at a time "
        f"({time.perf_counter() - start:.0f} s, GDAL cache {args.cache_mb} MB)"
    )
    for round_, name, level in failures:
        print(f"  round {round_ + 1}, {name}: level {level} has NaN where its pixels have values")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
