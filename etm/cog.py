"""Cloud-Optimized GeoTIFFs: creation options, writing, validation and atomic publishing.

The mosaic and its overview levels are written uncompressed (:func:`etm.mosaic.write_levels`)
and tied together by a small VRT that declares the levels as the band's overviews; GDAL's
COG driver then only compresses and lays them out (it neither reads the full resolution
again to compute overviews, nor holds anything but its block cache in memory).

A COG is written under a hidden temporary name beside its destination, validated with
rio-cogeo, and only then renamed to its final name, so an interrupted or failed job
never leaves a partial file at an output's name.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

import rasterio
import rasterio.shutil
from rasterio.errors import RasterioError

from etm.checks import CHIP_READING, ChipExpectation
from etm.errors import ChipError, PublishError
from etm.files import scratch_folder, whole
from etm.mosaic import Mosaic, write_levels

log = logging.getLogger(__name__)

#: GDAL block cache while sources are read, in MB: each band reads every source's blocks
#: once, so more only holds memory (the COG step uses the configured gdal_cache_mb).
READ_CACHE_MB = 64
#: glibc's malloc thresholds, fixed for the process. Buffers under 16 MB (GDAL's blocks,
#: most of a band's arrays) are reused from the heap, not mapped and zeroed anew at every
#: allocation; the heap keeps at most 32 MB free. Measured as
#: benchmarks/mosaic_speed.py does, one thread, one run each: a 25-chip tile took 4.0 s
#: with a 128 KB threshold, 2.6 s left to glibc's adjustment, 2.5 s fixed here; a 375-chip
#: region from its 15 tile COGs 41 s and 374 MB, 23 s and 447 MB, 23-25 s and 410 MB. With
#: a heap per thread, the rebuild benchmark's workflow (two jobs in one Snakemake process)
#: peaked at 750-770 MB with these values, 860-1,310 MB with 32 and 64 MB (glibc's
#: adjustment's ceiling).
MMAP_THRESHOLD_BYTES = 16 << 20
TRIM_THRESHOLD_BYTES = 32 << 20
#: glibc's heaps (M_ARENA_MAX): one for every thread. A heap per thread (glibc's default)
#: kept up to TRIM_THRESHOLD_BYTES free in each of the jobs' and readers' threads: the
#: rebuild benchmark's workflow (two jobs in one Snakemake process) peaked at 700-880 MB
#: with a heap per thread, 600-720 MB with one heap set at its first job (the threads that
#: had allocated kept theirs), 520-600 MB set when Snakemake loads the workflow (3 runs
#: each, in turn); bare build_cog in one process was unchanged; the mosaic benchmark with
#: two threads printed 0.72 and 0.56 x GDAL's wall against 0.68 and 0.55. The cost: a
#: 375-chip region from its tile COGs peaked at 444-450 MB in 25.5-26 s, against about
#: 410 MB in 23-25 s (glibc returns a heap's free memory from its top only); since the
#: mosaic stopped copying its bands, 341-358 MB in 22.7-23.5 s.
HEAPS = 1
#: Least free space under which a failed write is reported as a full disk (more if the
#: sources are larger: a COG needs at most about their size).
FULL_DISK_BYTES = 1 << 20


def tune_allocator() -> None:
    """Set glibc's malloc thresholds (MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES) and heaps
    (HEAPS) for the whole process; no-op elsewhere.

    A thread that allocated before keeps a heap of its own: the workflow calls this when
    Snakemake loads it, before the threads its jobs run in.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: its allocator has no such settings
        return
    libc.mallopt(-3, MMAP_THRESHOLD_BYTES)  # -3: M_MMAP_THRESHOLD
    libc.mallopt(-1, TRIM_THRESHOLD_BYTES)  # -1: M_TRIM_THRESHOLD
    libc.mallopt(-8, HEAPS)  # -8: M_ARENA_MAX


def cache_bytes(megabytes: int) -> int:
    """GDAL_CACHEMAX for rasterio.Env, which passes it to GDALSetCacheMax64 as bytes.

    (GDAL reads a small GDAL_CACHEMAX as MB; rasterio does not: 256 would be 256 bytes.)
    """
    return megabytes * 2**20


def creation_options(
    *, compress: str, level: int, predictor: str, blocksize: int, threads: int = 1
) -> dict:
    """GDAL COG driver creation options for the published COGs.

    Parameters
    ----------
    compress, level, predictor, blocksize
        As in the config's ``cog`` section.
    threads : int
        Threads for compression.

    Returns
    -------
    dict
        The source's overviews are used as they are; band statistics are embedded;
        BigTIFF is used only when needed.
    """
    options = dict(
        COMPRESS=compress,
        PREDICTOR=predictor,
        BLOCKSIZE=blocksize,
        OVERVIEWS="FORCE_USE_EXISTING",
        STATISTICS="YES",
        NUM_THREADS=threads,
        BIGTIFF="IF_SAFER",
    )
    if compress in ("DEFLATE", "ZSTD"):
        options["LEVEL"] = level
    return options


@dataclass(frozen=True)
class Metadata:
    """What a COG says of itself to GDAL readers (QGIS, gdalinfo): its band's description
    and unit, and dataset metadata items (provenance)."""

    description: str
    unit: str
    items: dict[str, str]


def _metadata_xml(items: dict[str, str]) -> str:
    entries = "".join(f'<MDI key="{escape(k)}">{escape(v)}</MDI>' for k, v in items.items())
    return f"<Metadata>{entries}</Metadata>"


def vrt_with_overviews(mosaic: Mosaic, dtype: str, metadata: Metadata | None = None) -> str:
    """A VRT of a mosaic's full resolution whose band declares the other levels as overviews.

    Parameters
    ----------
    mosaic : Mosaic
        Level files in the same folder as the VRT will be.
    dtype : str
        The levels' pixel type.
    metadata : Metadata, optional
        Carried by the VRT, so that the COG driver copies it into the COG.

    Returns
    -------
    str
        The VRT document.
    """
    layout = mosaic.layout
    full, *overviews = (escape(os.path.basename(path)) for path in mosaic.levels)
    overview_elements = "".join(
        f'<Overview><SourceFilename relativeToVRT="1">{name}</SourceFilename>'
        "<SourceBand>1</SourceBand></Overview>"
        for name in overviews
    )
    geotransform = ", ".join(repr(value) for value in layout.transform.to_gdal())
    described = ""
    if metadata:
        described = (
            f"<Description>{escape(metadata.description)}</Description>"
            f"<UnitType>{escape(metadata.unit)}</UnitType>"
        )
    return (
        f'<VRTDataset rasterXSize="{layout.width}" rasterYSize="{layout.height}">'
        f"<SRS>{escape(layout.crs.to_wkt())}</SRS><GeoTransform>{geotransform}</GeoTransform>"
        f"{_metadata_xml(metadata.items) if metadata else ''}"
        f'<VRTRasterBand dataType="{dtype.capitalize()}" band="1">{described}'
        "<NoDataValue>nan</NoDataValue>"
        f'<SimpleSource><SourceFilename relativeToVRT="1">{full}</SourceFilename>'
        "<SourceBand>1</SourceBand></SimpleSource>"
        f"{overview_elements}</VRTRasterBand></VRTDataset>"
    )


def validate(path: str) -> None:
    """Check that a file is a valid COG.

    Raises
    ------
    PublishError
        With rio-cogeo's reasons.
    """
    from rio_cogeo.cogeo import cog_validate  # pydantic and morecantile: 0.2 s to import

    try:
        valid, errors, _warnings = cog_validate(path, quiet=True)
    except RasterioError as error:
        valid, errors = False, [f"unreadable: {error}"]
    if not valid:
        raise PublishError(f"{path} is not a valid COG ({'; '.join(errors)}); not published")


def check_free_space(name: str, needed: int, *folders: str) -> None:
    """After a failed write, say so if a folder's disk has less than ``needed`` bytes free.

    GDAL reports a full disk only as a write or seek error (often removing what it wrote),
    or not at all, leaving a truncated file that fails validation.

    Raises
    ------
    PublishError
        Naming the COG and the folder short of space.
    """
    for folder in folders:
        free = shutil.disk_usage(folder).free
        if free < max(needed, FULL_DISK_BYTES):
            raise PublishError(
                f"cannot write the COG {name}: the disk of {folder} ran out of space "
                f"({free / 2**20:.1f} MiB free after the failed write, sources "
                f"{needed / 2**20:.1f} MiB); free space there, then run again. "
                "Nothing was published"
            )


def build_cog(
    sources: Sequence[str],
    destination: str,
    *,
    dtype: str,
    compress: str,
    level: int,
    predictor: str,
    blocksize: int,
    gdal_cache_mb: int,
    threads: int = 1,
    tmpdir: str | None = None,
    names: Sequence[str] | None = None,
    destination_name: str | None = None,
    combine: str = "first",
    chips: Sequence[ChipExpectation] | None = None,
    edge_tolerance_mm: float = 0.0,
    accept: Callable[[Mosaic], None] | None = None,
    metadata: Metadata | None = None,
) -> None:
    """Mosaic or aggregate rasters into a validated COG, published atomically.

    Parameters
    ----------
    sources : sequence of str
        Rasters on one pixel lattice (chips, or tile COGs), first valid value wins.
    destination : str
        Final path of the COG.
    dtype, compress, level, predictor, blocksize
        As in the config's ``cog`` section.
    gdal_cache_mb : int
        GDAL block cache of the COG step (reading sources uses at most READ_CACHE_MB).
    threads : int
        Threads for compression.
    tmpdir : str, optional
        Where the uncompressed levels are written (about 1.4 x the output's pixels).
    names : sequence of str, optional
        What logs and errors call each source (its S3 path when ``sources`` are local copies).
    destination_name : str, optional
        What the log calls the destination (its S3 path when Snakemake uploads it).
    combine : {"first", "sum", "mean"}
        How sources are combined per pixel (see :func:`etm.mosaic.write_levels`).
    chips : sequence of ChipExpectation, optional
        For chip sources, the chip each one must be (see :func:`etm.mosaic.write_levels`).
    edge_tolerance_mm : float
        With ``chips``: how far apart two chips' values of a shared pixel may be and agree.
    accept : callable, optional
        Called with the mosaic once its levels are written, before it is compressed; an
        error it raises stops the COG (e.g. a suspect chip, or one its neighbours refuse).
    metadata : Metadata, optional
        The COG's band description, unit and metadata items.

    Raises
    ------
    ChipReadError, ChipGridError, ChipContentError
        If a source is unreadable, off the lattice, or not the chip it should be; nothing
        is published.
    PublishError
        If the written COG is not valid; nothing is published.
    """
    tune_allocator()
    for name in names or sources:
        log.info("read %s", name)
    options = creation_options(
        compress=compress, level=level, predictor=predictor, blocksize=blocksize, threads=threads
    )
    with (
        whole(destination) as partial,
        scratch_folder(tmpdir) as scratch,
    ):
        try:
            cache = cache_bytes(min(gdal_cache_mb, READ_CACHE_MB))
            with rasterio.Env(GDAL_CACHEMAX=cache, **CHIP_READING):
                mosaic = write_levels(
                    sources, scratch, dtype=dtype, blocksize=blocksize, names=names,
                    combine=combine, chips=chips, edge_tolerance_mm=edge_tolerance_mm,
                )  # fmt: skip
            if accept:
                accept(mosaic)
            vrt = os.path.join(scratch, "mosaic.vrt")
            with open(vrt, "w") as stream:
                stream.write(vrt_with_overviews(mosaic, dtype, metadata))
            with rasterio.Env(GDAL_CACHEMAX=cache_bytes(gdal_cache_mb)):
                rasterio.shutil.copy(vrt, partial, driver="COG", **options)
            validate(partial)
        except ChipError:
            raise
        except Exception:
            # A full disk shows as a write or seek error, or as a truncated COG.
            needed = sum(os.path.getsize(source) for source in sources)
            folders = (os.path.dirname(partial) or ".", os.path.dirname(scratch))
            check_free_space(destination_name or destination, needed, *folders)
            raise
    log.info(
        "wrote valid COG %s (%d x %d pixels, %d overviews)",
        destination_name or destination,
        mosaic.layout.width,
        mosaic.layout.height,
        len(mosaic.levels) - 1,
    )
