"""A stand-in for the ET model's container, for missing_chips: rerun tests.

Reruns one chip and year by copying its files from a stash (the chips a test removed)
into the tile prefix (a local folder, or ``s3://bucket/prefix`` through boto3 and
AWS_ENDPOINT_URL), as the model would write them. ``--lose CHIP`` exits 0 without
writing that chip (a model run that silently produced nothing); ``--crash CHIP`` exits 3.

Usage: python fake_model.py --stash DIR --tile T --chip C --year Y --prefix P [...]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("--stash", "--tile", "--chip", "--year", "--prefix"):
        parser.add_argument(name, required=True)
    parser.add_argument("--lose", action="append", default=[])
    parser.add_argument("--crash", action="append", default=[])
    args = parser.parse_args()
    print(f"model: tile {args.tile} {args.chip} {args.year}")
    if args.chip in args.crash:
        print("model: out of memory", file=sys.stderr)
        return 3
    if args.chip in args.lose:
        return 0
    source = Path(args.stash) / args.tile / args.chip / args.year
    if args.prefix.startswith("s3://"):
        import boto3

        bucket, _, key = args.prefix.removeprefix("s3://").partition("/")
        s3 = boto3.client("s3")
        for chip_file in source.iterdir():
            s3.upload_file(
                str(chip_file), bucket, f"{key}/{args.chip}/{args.year}/{chip_file.name}"
            )
        return 0
    target = Path(args.prefix) / args.chip / args.year
    target.mkdir(parents=True, exist_ok=True)
    for chip_file in source.iterdir():
        if not (target / chip_file.name).exists():  # never overwrite a chip
            shutil.copy2(chip_file, target / chip_file.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
