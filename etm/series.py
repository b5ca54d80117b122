"""A product's published months as one Zarr v3 store, for time series.

A point's value in a region COG costs one 512×512 COG block (about 380 KB) a month. The
store holds the same float32 values chunked long in time and small in space: one inner chunk
is every month of a 16×16 pixel square, inside shards of 512×512 pixels (ZSTD after a byte
shuffle, the shard's index at its end). A point's whole series is then three reads,
whatever its length: the group's ``zarr.json`` (consolidated: every array's metadata and
what each month was read from), the shard's index (its last bytes) and the one inner chunk.

Layout, under the output prefix, ``series/{product}.zarr``: arrays ``{product}`` (time, y,
x; NaN where no COG has a value), ``time`` (days since 1970-01-01, the month's first day),
``y`` and ``x`` (pixel centres, degrees), readable with ``xarray.open_zarr``. The group's
attribute ``etm`` gives the grid (``transform``, ``crs``) and, per month, the COGs its
values were read from: the region's, or for a month the region lacks (``missing_chips:
skip``) the tiles' published for it, each with its place on the grid and its
``ETM_SOURCES_DIGEST``, which says which months a later run must read again.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import struct
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import rasterio
import rasterio.windows

from etm import s3, urls
from etm.errors import EtmError
from etm.files import write_whole

log = logging.getLogger(__name__)

#: Where a product's store is, relative to the output prefix.
STORE = "series/{product}.zarr"
#: Pixels on a side of a shard (a COG block, so that each block is decoded once) and of
#: an inner chunk.
SHARD, CHUNK = 512, 16
#: ZSTD after a byte shuffle (numcodecs' ``shuffle``: the float32 values' first bytes, then
#: their second...): 0.63 of plain ZSTD's size on benchmarks/series_reads.py's fields, as
#: small as Blosc's ZSTD, and read by the map page with the ZSTD decoder it has for COGs.
ZSTD_LEVEL = 5
#: What the store's group attribute ``etm`` is, and its layout's version.
FORMAT = "etm-series/1"
#: How its values are stored: a store of another layout is written anew (its months
#: copied) even when no COG changed.
LAYOUT = {"shard": SHARD, "chunk": CHUNK, "codecs": f"shuffle4+zstd{ZSTD_LEVEL}"}


@dataclass(frozen=True)
class SourceCog:
    """A COG whose values go into the store: a region month's, or a tile's."""

    period: str
    #: Its path relative to the output prefix, as the store records it.
    href: str
    #: Where the job reads it (local path, or what GDAL opens).
    path: str


@dataclass(frozen=True)
class Grid:
    """The store's pixel lattice: the union of its COGs' footprints, in EPSG:4326."""

    west: float
    north: float
    xres: float
    yres: float
    width: int
    height: int

    @property
    def transform(self) -> list[float]:
        return [self.xres, 0.0, self.west, 0.0, -self.yres, self.north]

    def window(self, bounds: Sequence[float]) -> tuple[int, int, int, int]:
        """(col_off, row_off, width, height) of a footprint on the lattice."""
        west, south, east, north = bounds
        col = round((west - self.west) / self.xres)
        row = round((self.north - north) / self.yres)
        return col, row, round((east - west) / self.xres), round((north - south) / self.yres)


def _month_start_days(period: str) -> int:
    start = datetime.date(int(period[:4]), int(period[4:6]), 1)
    return (start - datetime.date(1970, 1, 1)).days


def grid_of(headers: Sequence[dict]) -> Grid:
    """The lattice holding every COG (headers from :func:`read_header`).

    Raises
    ------
    EtmError
        If the COGs' pixel sizes differ: they are not on one lattice.
    """
    xres, yres = headers[0]["res"]
    for header in headers:
        if not np.allclose(header["res"], (xres, yres), rtol=1e-9, atol=0):
            raise EtmError(
                f"{header['href']}: pixel size {header['res']} is not the other COGs' "
                f"{(xres, yres)}; the series store needs one lattice"
            )
    west = min(h["bounds"][0] for h in headers)
    south = min(h["bounds"][1] for h in headers)
    east = max(h["bounds"][2] for h in headers)
    north = max(h["bounds"][3] for h in headers)
    width, height = round((east - west) / xres), round((north - south) / yres)
    return Grid(west, north, xres, yres, width, height)


def read_header(cog: SourceCog) -> dict:
    """A COG's footprint, pixel size and sources' digest (its header only)."""
    from etm.publish import SOURCES_DIGEST

    with rasterio.open(cog.path) as dataset:
        return dict(
            period=cog.period, href=cog.href, bounds=list(dataset.bounds),
            res=list(dataset.res), digest=dataset.tags().get(SOURCES_DIGEST, ""),
        )  # fmt: skip


def month_sources(headers: Sequence[dict], grid: Grid) -> dict[str, list]:
    """Per month, its COGs as the store records them: ``[href, digest, window]``, the
    region's alone where the month has one, else its tiles', by href."""
    months: dict[str, list[dict]] = {}
    for header in headers:
        months.setdefault(header["period"], []).append(header)
    recorded = {}
    for period, found in sorted(months.items()):
        region = [h for h in found if h["href"].startswith("mosaic/")]
        chosen = region or sorted(found, key=lambda h: h["href"])
        recorded[period] = [
            [h["href"], h["digest"], list(grid.window(h["bounds"]))] for h in chosen
        ]
    return recorded


def read_attributes(store: str) -> dict | None:
    """The ``etm`` attribute of a local store, or None if there is none (or another)."""
    try:
        with open(os.path.join(store, "zarr.json")) as stream:
            attributes = json.load(stream).get("attributes", {}).get("etm")
    except (OSError, ValueError):
        return None
    return attributes if attributes and attributes.get("format") == FORMAT else None


def kept_months(old: dict | None, sources: dict[str, list], grid: Grid) -> dict[str, int]:
    """The months the old store holds as they are now (same COGs, digests and lattice):
    their index in the old store's time axis."""
    if not old or old.get("transform") != grid.transform or old.get("shape")[1:] != [
        grid.height, grid.width,
    ]:  # fmt: skip
        return {}
    return {
        period: old["periods"].index(period)
        for period, recorded in sources.items()
        if old["sources"].get(period) == recorded
    }


def _create(path: str, product: str, periods: list[str], grid: Grid, attributes: dict):
    import zarr
    from numcodecs.zarr3 import Shuffle
    from zarr.codecs import ZstdCodec

    warnings.filterwarnings("ignore", "Numcodecs codecs are not in the Zarr version 3")
    group = zarr.open_group(path, mode="w", zarr_format=3)
    time = max(len(periods), 1)
    array = group.create_array(
        product, shape=(len(periods), grid.height, grid.width), dtype="float32",
        chunks=(time, CHUNK, CHUNK), shards=(time, SHARD, SHARD), fill_value=np.nan,
        compressors=[Shuffle(elementsize=4), ZstdCodec(level=ZSTD_LEVEL)],
        dimension_names=("time", "y", "x"),
        attributes={"units": "mm"},
    )  # fmt: skip
    days = group.create_array(
        "time", shape=(len(periods),), dtype="int32", chunks=(time,), dimension_names=("time",),
        attributes={"units": "days since 1970-01-01", "calendar": "proleptic_gregorian"},
    )  # fmt: skip
    days[:] = np.array([_month_start_days(p) for p in periods], dtype="int32")
    for name, count, start, step in (
        ("y", grid.height, grid.north, -grid.yres),
        ("x", grid.width, grid.west, grid.xres),
    ):
        axis = group.create_array(
            name, shape=(count,), dtype="float64", chunks=(max(count, 1),),
            dimension_names=(name,), attributes={"units": "degrees"},
        )  # fmt: skip
        axis[:] = start + step * (np.arange(count) + 0.5)
    group.attrs["etm"] = attributes
    return array


def _fill_month(block: np.ndarray, datasets: list, window: tuple[int, int, int, int]) -> None:
    """Read a month's COGs into its block (NaN first), the first valid value winning."""
    col0, row0, width, height = window
    for dataset, (col, row, cog_width, cog_height) in datasets:
        left, top = max(col, col0), max(row, row0)
        right = min(col + cog_width, col0 + width)
        bottom = min(row + cog_height, row0 + height)
        if right <= left or bottom <= top:
            continue
        values = dataset.read(
            1, window=rasterio.windows.Window(left - col, top - row, right - left, bottom - top)
        )
        target = block[top - row0 : bottom - row0, left - col0 : right - col0]
        empty = np.isnan(target)
        target[empty] = values[empty]


def _shard_windows(grid: Grid):
    for row in range(0, grid.height, SHARD):
        for col in range(0, grid.width, SHARD):
            yield col, row, min(SHARD, grid.width - col), min(SHARD, grid.height - row)


def _write_shards(
    array, grid: Grid, periods: list[str], previous, kept: dict[str, int], opened: dict
) -> None:
    """Write every shard of the new store: the months kept copied from the old store
    (``previous``), the others read from their COGs (``opened``: per month, its datasets
    and their windows on the grid)."""
    new_index = [periods.index(period) for period in kept]
    old_index = list(kept.values())
    for col, row, width, height in _shard_windows(grid):
        block = np.full((len(periods), height, width), np.nan, dtype="float32")
        if kept:
            # The old shard whole (each chunk holds every month), then the months kept.
            block[new_index] = previous[:, row : row + height, col : col + width][old_index]
        for period, datasets in opened.items():
            _fill_month(block[periods.index(period)], datasets, (col, row, width, height))
        array[:, row : row + height, col : col + width] = block


def _swap_in(partial: str, store: str) -> None:
    """Put the written store in place of the old one (renames: readers see either)."""
    old = f"{partial}.old"
    if os.path.exists(store):
        os.replace(store, old)
    os.replace(partial, store)
    shutil.rmtree(old, ignore_errors=True)


def update_store(store: str, product: str, cogs: Sequence[SourceCog]) -> list[str]:
    """Write a product's store from its published COGs, reading again only the months
    whose COGs changed since the store was written.

    Every shard holds every month, so the store is written anew (the months kept are
    copied from the old store, not read from their COGs) under a hidden name, then
    renamed into place.

    Parameters
    ----------
    store : str
        The store's local folder (``.../series/{product}.zarr``).
    product : str
    cogs : sequence of SourceCog
        Every region month's COG, and the tile COGs of months the region lacks.

    Returns
    -------
    list of str
        The months read from their COGs (``YYYYMM``); empty if the store was up to date.

    Raises
    ------
    EtmError
        If no COG is given, or they are not on one lattice.
    """
    import zarr

    if not cogs:
        raise EtmError(f"{store}: no published month of {product} to write a series of")
    headers = [read_header(cog) for cog in cogs]
    grid = grid_of(headers)
    sources = month_sources(headers, grid)
    periods = sorted(sources)
    old = read_attributes(store)
    kept = kept_months(old, sources, grid)
    changed = [period for period in periods if period not in kept]
    if not changed and old and old["periods"] == periods and old.get("layout") == LAYOUT:
        log.info("%s: up to date (%d months)", store, len(periods))
        return []
    attributes = dict(
        format=FORMAT, product=product, crs="EPSG:4326", transform=grid.transform,
        shape=[len(periods), grid.height, grid.width], periods=periods, sources=sources,
        layout=LAYOUT,
    )  # fmt: skip
    partial = os.path.join(os.path.dirname(store), f".{os.path.basename(store)}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    array = _create(partial, product, periods, grid, attributes)
    previous = zarr.open_array(store, path=product, mode="r") if kept else None
    paths = {cog.href: cog.path for cog in cogs}
    with rasterio.Env(GDAL_CACHEMAX=64):
        opened = {
            period: [(rasterio.open(paths[href]), window) for href, _, window in sources[period]]
            for period in changed
        }
        try:
            _write_shards(array, grid, periods, previous, kept, opened)
        finally:
            for datasets in opened.values():
                for dataset, _ in datasets:
                    dataset.close()
    with warnings.catch_warnings():  # not in the v3 spec yet; zarr and xarray read it
        warnings.simplefilter("ignore", UserWarning)
        zarr.consolidate_metadata(partial)
    _swap_in(partial, store)
    log.info(
        "%s: %d months, %d read from their COGs, %d kept", store, len(periods), len(changed),
        len(kept),
    )  # fmt: skip
    return changed


def store_sources(publications: Sequence, product: str) -> list:
    """The publications a product's store is read from: every region month, and the tile
    months of the months the region lacks (:class:`etm.plan.Publication`)."""
    months = [p for p in publications if p.product == product and p.period.is_month]
    regions = {p.period for p in months if p.tile is None}
    return [p for p in months if p.tile is None or p.period not in regions]


def write_from_inputs(
    cogs: Sequence[str], hrefs: Sequence[str], periods: Sequence[str], store: str,
    product: str, record: str,
) -> None:  # fmt: skip
    """Rule series_store: bring a product's store up to date with its published COGs,
    then record its months (the rule's output, written last).

    Parameters
    ----------
    cogs, hrefs, periods : sequence of str
        Each COG's local path, its path relative to the output prefix, and its month.
    store : str
        The store's local folder.
    product : str
    record : str
        Where the months read again and the store's months are recorded (JSON).
    """
    sources = [SourceCog(*cog) for cog in zip(periods, hrefs, cogs, strict=True)]
    read = update_store(store, product, sources)
    text = json.dumps({"store": store, "read": read, "months": sorted(set(periods))})
    os.makedirs(os.path.dirname(record) or ".", exist_ok=True)
    write_whole(text, record)


# The read side: a point's series in three reads, by HTTP range requests or their like.

Fetch = Callable[[str, "tuple[int, int] | int | None"], "bytes | None"]


def fetch(url: str, span: tuple[int, int] | int | None = None) -> bytes | None:
    """Bytes of a local file, ``s3://`` object or ``http(s)://`` resource: all of it, a
    range ``(start, length)``, or its last ``span`` bytes; None if it does not exist.

    Raises
    ------
    EtmError
        Naming the file, if it exists but cannot be read.
    """
    if span is None:
        header = None
    elif isinstance(span, int):
        header = f"bytes=-{span}"
    else:
        header = f"bytes={span[0]}-{span[0] + span[1] - 1}"
    try:
        if url.startswith("s3://"):
            return _fetch_s3(url, header)
        if url.startswith(("http://", "https://")):
            return _fetch_http(url, header, span)
        return _fetch_local(url, span)
    except EtmError:
        raise
    except Exception as error:
        raise EtmError(f"{url}: cannot be read ({error})") from None


def _fetch_http(url: str, header: str | None, span: tuple[int, int] | int | None) -> bytes | None:
    request = urls.request(url, headers={"Range": header} if header else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            data, whole = response.read(), response.status == 200
    except urllib.error.HTTPError as error:
        if error.code in (403, 404):  # a static host's answer for a missing file
            return None
        raise
    if not whole or span is None:
        return data
    # A host that ignores ranges sends the whole file.
    return data[-span:] if isinstance(span, int) else data[span[0] : span[0] + span[1]]


def _fetch_s3(url: str, header: str | None) -> bytes | None:
    from botocore.exceptions import ClientError

    bucket, key = s3.split(url.removeprefix("s3://"))
    try:
        extra = {"Range": header} if header else {}
        return s3.client().get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
    except ClientError as error:
        # Without s3:ListBucket, a missing key is AccessDenied.
        if error.response["Error"]["Code"] in ("NoSuchKey", "404", "AccessDenied", "403"):
            return None
        raise


def _fetch_local(path: str, span: tuple[int, int] | int | None) -> bytes | None:
    try:
        with open(path, "rb") as stream:
            if isinstance(span, int):
                stream.seek(max(0, os.fstat(stream.fileno()).st_size - span))
                return stream.read()
            if span is not None:
                stream.seek(span[0])
                return stream.read(span[1])
            return stream.read()
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class StoredPoint:
    """A point's series from a store: per month its value and the COG it came from."""

    periods: list[str]
    values: list[float]
    cogs: list[str]
    #: The store's footprint: west, south, east, north.
    bbox: tuple[float, float, float, float]


def open_metadata(prefix: str, product: str, read: Fetch = fetch) -> dict | None:
    """The store's group metadata (consolidated), or None if the prefix has no store."""
    data = read(f"{prefix}/{STORE.format(product=product)}/zarr.json", None)
    if data is None:
        return None
    metadata = json.loads(data)
    if metadata.get("attributes", {}).get("etm", {}).get("format") != FORMAT:
        return None
    return metadata


def _inner_chunk(metadata: dict, product: str) -> tuple[list[int], list[int], dict]:
    array = metadata["consolidated_metadata"]["metadata"][product]
    shard = array["chunk_grid"]["configuration"]["chunk_shape"]
    (sharding,) = array["codecs"]
    configuration = sharding["configuration"]
    if sharding["name"] != "sharding_indexed" or configuration["index_location"] != "end":
        raise EtmError(f"series store of {product}: not sharded as etm writes it")
    return shard, sharding["configuration"]["chunk_shape"], sharding["configuration"]


def _decode(data: bytes, codecs: list[dict], shape: list[int]) -> np.ndarray:
    from numcodecs import Shuffle, Zstd

    for codec in reversed(codecs):
        if codec["name"] == "zstd":
            data = Zstd().decode(data)
        elif codec["name"] == "numcodecs.shuffle":
            data = Shuffle(codec["configuration"]["elementsize"]).decode(data)
        elif codec["name"] != "bytes" or codec["configuration"]["endian"] != "little":
            raise EtmError(f"series store: codec {codec['name']} is not one etm writes")
    return np.frombuffer(data, dtype="<f4").reshape(shape)


def pixel_cog(sources: list, col: int, row: int) -> str:
    """Which of a month's COGs (``[href, digest, window]``) holds a pixel."""
    for href, _, (col_off, row_off, width, height) in sources:
        if col_off <= col < col_off + width and row_off <= row < row_off + height:
            return href
    return ""


def read_point(
    prefix: str, product: str, lon: float, lat: float, read: Fetch = fetch
) -> StoredPoint | None:
    """A point's every month from the product's store; None if the prefix has none.

    Three reads: the metadata, the shard's index, the point's inner chunk (two if the
    shard or the chunk holds no value).

    Raises
    ------
    EtmError
        If the store is not as etm writes it.
    """
    metadata = open_metadata(prefix, product, read)
    if metadata is None:
        return None
    etm = metadata["attributes"]["etm"]
    xres, _, west, _, negative_yres, north = etm["transform"]
    periods, (_, height, width) = etm["periods"], etm["shape"]
    bbox = (west, north + negative_yres * height, west + xres * width, north)
    col = int(np.floor((lon - west) / xres))
    row = int(np.floor((lat - north) / negative_yres))
    if not (0 <= col < width and 0 <= row < height):
        return StoredPoint(periods, [], [], bbox)
    shard, inner, sharding = _inner_chunk(metadata, product)
    per_shard = [shard[1] // inner[1], shard[2] // inner[2]]
    store = f"{prefix}/{STORE.format(product=product)}"
    key = f"{store}/{product}/c/0/{row // shard[1]}/{col // shard[2]}"
    index = read(key, per_shard[0] * per_shard[1] * 16 + 4)
    values = np.full(len(periods), np.nan, dtype="float32")
    if index is not None:
        chunk_row, chunk_col = (row % shard[1]) // inner[1], (col % shard[2]) // inner[2]
        entry = chunk_row * per_shard[1] + chunk_col
        offset, size = struct.unpack_from("<QQ", index, entry * 16)
        if offset != 2**64 - 1:
            chunk = _decode(read(key, (offset, size)), sharding["codecs"], inner)
            values = chunk[:, row % inner[1], col % inner[2]]
    cogs = [pixel_cog(etm["sources"][period], col, row) for period in periods]
    return StoredPoint(periods, [float(v) for v in values], cogs, bbox)
