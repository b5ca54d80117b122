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


#: Storage plugins a job needs: the workflow's (etm-s3) and the one it extends (s3).
STORAGE_PLUGINS = ("etm-s3", "s3")


def check_image() -> str:
    """Check that a job can run here: Snakemake finds both storage plugins, every etm
    module a job imports imports, and GDAL has the COG driver.

    Returns
    -------
    str
        What was found, for the build log.

    Raises
    ------
    EtmError
        Naming what is missing.
    """
    import importlib
    from importlib.metadata import version

    import rasterio
    from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

    for module in ("etm.publish", "etm.checks", "etm.stac", "etm.quicklook", "etm.rerun"):
        importlib.import_module(module)
    found = StoragePluginRegistry().get_registered_plugins()
    missing = [name for name in STORAGE_PLUGINS if name not in found]
    if missing:
        raise EtmError(f"Snakemake finds no storage plugin {', '.join(missing)}")
    with rasterio.Env() as env:
        if "COG" not in env.drivers():
            raise EtmError(f"GDAL {rasterio.__gdal_version__} has no COG driver")
    return (
        f"image ok: etm {version('etm')}, snakemake {version('snakemake')}, storage "
        f"plugins {', '.join(STORAGE_PLUGINS)}, GDAL {rasterio.__gdal_version__} with COG"
    )


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="etm", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    unlocking = commands.add_parser("unlock", help="remove the lock a run left on a prefix")
    unlocking.add_argument("prefix", help="the output prefix: a folder, or s3://bucket/prefix")
    commands.add_parser("check-image", help="check that this environment runs every job")
    args = parser.parse_args(argv)
    try:
        print(unlock(args.prefix) if args.command == "unlock" else check_image())
    except EtmError as error:
        print(f"etm error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
