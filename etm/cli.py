"""The ``etm`` command: tools beside the workflow.

etm unlock PREFIX     remove the lock a run left on an output prefix (local or s3://)
etm batch jobs|cancel PREFIX   list, or end, the AWS Batch jobs of the run holding its lock
etm timeseries ...    a point's or a polygon's monthly series from the published COGs
etm check-image       check that this environment runs every job
etm --version         the version of etm (its package's), which the image and every COG carry
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from etm.errors import EtmError, hide, one_line, say, without_passwords
from etm.lock import LOCK_NAME, OutputLock


def _lock(prefix: str) -> OutputLock:
    on_s3 = prefix.startswith("s3://")
    return OutputLock(prefix.removeprefix("s3://"), on_s3=on_s3, label=prefix)


def unlock(prefix: str, force: bool = False) -> str:
    """Remove an output prefix's lock; returns what was removed, for the user.

    Parameters
    ----------
    prefix : str
        A local folder, or ``s3://bucket/prefix``.
    force : bool
        Remove it even if its run is alive on this machine, or its containers have not
        ended.

    Raises
    ------
    EtmError
        Without ``force``, if the run holding it is alive here, or its AWS Batch jobs
        have not all ended.
    """
    try:
        return _unlock(prefix, force)
    except (BotoCoreError, ClientError, OSError) as error:
        raise EtmError(
            f"cannot remove the lock of {prefix}: {one_line(error)}; check that you may read and "
            f"delete {prefix}/{LOCK_NAME}"
        ) from None


def _unlock(prefix: str, force: bool) -> str:
    from etm.run import MainProcess

    lock = _lock(prefix)
    found = lock.read()
    if found is None:
        return f"{prefix} has no lock"
    holder = found[0]
    if not force and holder.is_alive_here():
        raise EtmError(
            f"the lock of {prefix} is held by {holder.describe()}, which is running (see "
            f"`ps -p {','.join(map(str, holder.processes_here()))}`: its main process or its "
            "jobs): wait for it, or stop it; `etm unlock --force` removes "
            "the lock of a run that is still writing"
        )
    unended = MainProcess._unended(holder) if holder.batch and not force else None
    if unended:
        raise EtmError(f"the lock of {prefix} is held by {holder.describe()}: {unended}")
    lock.held = found
    lock.release()
    return f"removed the lock of {prefix}, held by {holder.describe()}"


def batch_jobs(prefix: str | None, run: str | None, queue: str | None, region: str | None,
               cancel: bool) -> str:  # fmt: skip
    """List, or end (``cancel``), the AWS Batch jobs of a run: the run holding an output
    prefix's lock, or the one given.

    Raises
    ------
    EtmError
        If neither a locked prefix nor a run, queue and region say which jobs.
    """
    from etm import batch

    if prefix:
        holder = _lock(prefix).holder()
        if holder is None or not holder.batch:
            raise EtmError(
                f"{prefix} has no lock of a run on AWS Batch: give --run, --queue and --region"
            )
        run, queue, region = holder.run, holder.batch["queue"], holder.batch["region"]
    if not (run and queue and region):
        raise EtmError("give an output prefix, or --run, --queue and --region")
    client = batch.client(region)
    if cancel:
        ended, definitions = batch.cancel(client, queue, run, reason="etm batch cancel")
        return f"ended {ended} jobs of run {run} and deregistered {definitions} job definitions"
    jobs = batch.run_jobs(client, queue, run)
    lines = [f"{job.id}\t{job.status}\t{job.name}" for job in jobs]
    return "\n".join([f"{len(jobs)} jobs of run {run} on {queue}", *lines])


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
    import pkgutil
    from importlib.metadata import version

    import rasterio
    from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

    import etm

    # Every module of etm (a job imports the run, its log, the verifier's, the reports'...)
    # and both of its plugins.
    modules = [f"etm.{m.name}" for m in pkgutil.iter_modules(etm.__path__)] + [
        "snakemake_storage_plugin_etm_s3", "snakemake_executor_plugin_etm_batch",
    ]  # fmt: skip
    for module in modules:
        importlib.import_module(module)
    found = StoragePluginRegistry().get_registered_plugins()
    missing = [name for name in STORAGE_PLUGINS if name not in found]
    if missing:
        raise EtmError(f"Snakemake finds no storage plugin {', '.join(missing)}")
    with rasterio.Env() as env:
        if "COG" not in env.drivers():
            raise EtmError(f"GDAL {rasterio.__gdal_version__} has no COG driver")
    return (
        f"image ok: etm {version('etm')} ({len(modules)} modules), snakemake "
        f"{version('snakemake')}, storage "
        f"plugins {', '.join(STORAGE_PLUGINS)}, GDAL {rasterio.__gdal_version__} with COG"
    )


def timeseries(args: argparse.Namespace) -> str:
    """The CSV of ``etm timeseries``."""
    from etm import timeseries as series

    if not args.catalog.strip():
        raise EtmError("give the output prefix, or its catalog.json: the catalog is ''")
    span = dict(start=args.start, end=args.end)
    if args.polygon:
        geometry = series.polygon_from(args.polygon)
        readings = series.polygon_series(args.catalog, args.product, geometry, **span)
    elif args.lon is None or args.lat is None:
        raise EtmError("give --lon and --lat, or --polygon FILE.geojson")
    else:
        readings = series.point_series(args.catalog, args.product, args.lon, args.lat, **span)
    return series.as_csv(readings).rstrip("\n")


class _Parser(argparse.ArgumentParser):
    """Its usage errors, which quote a wrong argument, hide passwords as etm's lines do."""

    def error(self, message: str) -> NoReturn:
        super().error(without_passwords(message))


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    from importlib.metadata import version

    parser = _Parser(prog="etm", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"etm {version('etm')}")
    commands = parser.add_subparsers(dest="command", required=True)
    unlocking = commands.add_parser("unlock", help="remove the lock a run left on a prefix")
    unlocking.add_argument("prefix", help="the output prefix: a folder, or s3://bucket/prefix")
    unlocking.add_argument(
        "--force", action="store_true", help="even if its run is alive or its jobs have not ended"
    )
    jobs = commands.add_parser("batch", help="the AWS Batch jobs of a run: list or end them")
    jobs.add_argument("action", choices=("jobs", "cancel"))
    jobs.add_argument("prefix", nargs="?", help="an output prefix whose lock names the run")
    jobs.add_argument("--run", help="the run's id (its lock's 'run')")
    jobs.add_argument("--queue", help="the job queue's name or ARN")
    jobs.add_argument("--region", help="the queue's region")
    series = commands.add_parser("timeseries", help="a monthly series from the published COGs")
    series.add_argument("catalog", help="output prefix or its catalog.json: path, s3://, https://")
    series.add_argument("--product", required=True)
    series.add_argument("--lon", type=float, help="degrees east (negative: west)")
    series.add_argument("--lat", type=float, help="degrees north")
    series.add_argument("--polygon", help="a GeoJSON file: its first feature or geometry")
    series.add_argument("--start", help="first month, YYYY-MM")
    series.add_argument("--end", help="last month, YYYY-MM")
    commands.add_parser("check-image", help="check that this environment runs every job")
    for argument in sys.argv[1:] if argv is None else argv:
        hide(argument)
    args = parser.parse_args(argv)
    run = {
        "unlock": lambda: unlock(args.prefix, args.force),
        "batch": lambda: batch_jobs(
            args.prefix, args.run, args.queue, args.region, args.action == "cancel"
        ),
        "timeseries": lambda: timeseries(args),
    }
    try:
        print(run.get(args.command, check_image)())
        sys.stdout.flush()
    except BrokenPipeError:  # its reader (`head`) stopped: end as `cat` would, untold
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        say(["interrupted (Ctrl-C)"], prefix="etm: ")
        return 130
    except EtmError as error:
        say([str(error)], prefix="etm error: ")
        return 1
    except (BotoCoreError, ClientError) as error:  # quoting the endpoint URL: said masked
        say([f"{one_line(error)}; check AWS_ENDPOINT_URL and the credentials"], "etm error: ")
        return 1
    return 0


def run() -> None:
    """The ``etm`` command: :func:`main`, then an exit that skips the interpreter's
    finalization, in which pyarrow's threads (of the GeoParquet index ``etm timeseries``
    reads) aborted it now and then: "terminate called without an active exception", exit
    status 134, in 2 of 80 runs."""
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    run()
