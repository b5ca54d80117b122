"""The ``etm`` command: tools beside the workflow.

etm unlock PREFIX     remove the lock a run left on an output prefix (local or s3://)
etm timeseries ...    a point's or a polygon's monthly series from the published COGs
etm check-image       check that this environment runs every job
"""

from __future__ import annotations

import argparse
import json
import sys

from etm.errors import EtmError, say
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


def timeseries(args: argparse.Namespace) -> str:
    """The CSV of ``etm timeseries``."""
    from etm import timeseries as series

    span = dict(start=args.start, end=args.end)
    if args.polygon:
        geometry = json.loads(series.read_text(args.polygon))
        geometry = geometry.get("features", [geometry])[0]
        geometry = geometry.get("geometry", geometry)
        readings = series.polygon_series(args.catalog, args.product, geometry, **span)
    elif args.lon is None or args.lat is None:
        raise EtmError("give --lon and --lat, or --polygon FILE.geojson")
    else:
        readings = series.point_series(args.catalog, args.product, args.lon, args.lat, **span)
    return series.as_csv(readings).rstrip("\n")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="etm", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    unlocking = commands.add_parser("unlock", help="remove the lock a run left on a prefix")
    unlocking.add_argument("prefix", help="the output prefix: a folder, or s3://bucket/prefix")
    series = commands.add_parser("timeseries", help="a monthly series from the published COGs")
    series.add_argument("catalog", help="output prefix or its catalog.json: path, s3://, https://")
    series.add_argument("--product", required=True)
    series.add_argument("--lon", type=float, help="degrees east (negative: west)")
    series.add_argument("--lat", type=float, help="degrees north")
    series.add_argument("--polygon", help="a GeoJSON file: its first feature or geometry")
    series.add_argument("--start", help="first month, YYYY-MM")
    series.add_argument("--end", help="last month, YYYY-MM")
    commands.add_parser("check-image", help="check that this environment runs every job")
    args = parser.parse_args(argv)
    run = {"unlock": lambda: unlock(args.prefix), "timeseries": lambda: timeseries(args)}
    try:
        print(run.get(args.command, check_image)())
    except EtmError as error:
        say([str(error)], prefix="etm error: ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
