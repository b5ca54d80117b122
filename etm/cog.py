"""Cloud-Optimized GeoTIFFs: creation options, writing, validation and atomic publishing.

A COG is written under a hidden temporary name beside its destination, validated with
rio-cogeo, and only then renamed to its final name, so an interrupted or failed job
never leaves a partial file at an output's name.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence

import rasterio
import rasterio.shutil
from rio_cogeo.cogeo import cog_validate

from etm.errors import PublishError
from etm.mosaic import write_mosaic

log = logging.getLogger(__name__)


def creation_options(
    *,
    compress: str,
    level: int,
    predictor: str,
    blocksize: int,
    overview_resampling: str,
    threads: int = 1,
) -> dict:
    """GDAL COG driver creation options for the published COGs.

    Parameters
    ----------
    compress, level, predictor, blocksize, overview_resampling
        As in the config's ``cog`` section.
    threads : int
        Threads for compression and overviews.

    Returns
    -------
    dict
        Band statistics are always embedded; BigTIFF is used only when needed.
    """
    options = dict(
        COMPRESS=compress,
        PREDICTOR=predictor,
        BLOCKSIZE=blocksize,
        OVERVIEW_RESAMPLING=overview_resampling,
        STATISTICS="YES",
        NUM_THREADS=threads,
        BIGTIFF="IF_SAFER",
    )
    if compress in ("DEFLATE", "ZSTD"):
        options["LEVEL"] = level
    return options


def validate(path: str) -> None:
    """Check that a file is a valid COG.

    Raises
    ------
    PublishError
        With rio-cogeo's reasons.
    """
    valid, errors, _warnings = cog_validate(path, quiet=True)
    if not valid:
        raise PublishError(f"{path} is not a valid COG ({'; '.join(errors)}); not published")


def partial_path(destination: str) -> str:
    """The hidden name a COG is written under before it is published."""
    folder, name = os.path.split(destination)
    return os.path.join(folder, f".{name}.partial")


def build_cog(
    sources: Sequence[str],
    destination: str,
    *,
    dtype: str,
    compress: str,
    level: int,
    predictor: str,
    blocksize: int,
    overview_resampling: str,
    gdal_cache_mb: int,
    threads: int = 1,
    tmpdir: str | None = None,
    names: Sequence[str] | None = None,
    destination_name: str | None = None,
) -> None:
    """Mosaic rasters into a validated COG, published atomically at ``destination``.

    Parameters
    ----------
    sources : sequence of str
        Rasters on one pixel lattice (chips, or tile COGs), first valid value wins.
    destination : str
        Final path of the COG.
    dtype, compress, level, predictor, blocksize, overview_resampling
        As in the config's ``cog`` section.
    gdal_cache_mb : int
        GDAL block cache.
    threads : int
        Threads for compression and overviews.
    tmpdir : str, optional
        Where the uncompressed intermediate mosaic is written.
    names : sequence of str, optional
        What logs and errors call each source (its S3 path when ``sources`` are local copies).
    destination_name : str, optional
        What the log calls the destination (its S3 path when Snakemake uploads it).

    Raises
    ------
    ChipReadError, ChipGridError
        If a source is unreadable or off the lattice; nothing is published.
    PublishError
        If the written COG is not valid; nothing is published.
    """
    for name in names or sources:
        log.info("read %s", name)
    partial = partial_path(destination)
    options = creation_options(
        compress=compress,
        level=level,
        predictor=predictor,
        blocksize=blocksize,
        overview_resampling=overview_resampling,
        threads=threads,
    )
    try:
        with (
            rasterio.Env(GDAL_CACHEMAX=gdal_cache_mb),
            tempfile.TemporaryDirectory(dir=tmpdir, prefix="etm-") as scratch,
        ):
            mosaic = os.path.join(scratch, "mosaic.tif")
            layout = write_mosaic(sources, mosaic, dtype=dtype, blocksize=blocksize, names=names)
            rasterio.shutil.copy(mosaic, partial, driver="COG", **options)
        validate(partial)
        os.replace(partial, destination)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    log.info(
        "wrote valid COG %s (%d x %d pixels)",
        destination_name or destination,
        layout.width,
        layout.height,
    )
