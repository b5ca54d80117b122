"""The ``etm`` command: tools beside the workflow.

    etm unlock PREFIX     remove the lock a run left on an output prefix (local or s3://)
"""

from __future__ import annotations

import argparse
import sys

from etm.errors import EtmError
from etm.lock import OutputLock


def unlock(prefix: str) -> str:
    """Remove an output prefix's lock; returns what was removed, for the user.

    Parameters
    ----------
    prefix : str
        A local folder, or ``s3://bucket/prefix``.
    """
    on_s3 = prefix.startswith("s3://")
    lock = OutputLock(prefix.removeprefix("s3://"), on_s3=on_s3, label=prefix)
    holder = lock.holder()
    if holder is None:
        return f"{prefix} has no lock"
    lock.held = holder
    lock.release()
    return f"removed the lock of {prefix}, held by {holder.describe()}"


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="etm", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    unlocking = commands.add_parser("unlock", help="remove the lock a run left on a prefix")
    unlocking.add_argument("prefix", help="the output prefix: a folder, or s3://bucket/prefix")
    args = parser.parse_args(argv)
    try:
        print(unlock(args.prefix))
    except EtmError as error:
        print(f"etm error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
