"""A product's published months as one Zarr v3 store, for time series.

A point's value in a region COG costs one 512×512 COG block (about 380 KB) a month. The
store holds the same float32 values chunked long in time and small in space: one inner chunk
is 240 months (:data:`MONTHS`) of a 16×16 pixel square, inside shards of 240 months and
512×512 pixels (ZSTD after a byte shuffle, the shard's index at its end). A point's series
is then the group's ``zarr.json`` (consolidated: every array's metadata and what each month
was read from), and per 20 years the shard's index (its last bytes) and one inner chunk:
three reads up to twenty years.

A month added or redone rewrites only the shards of its 20 years (:func:`plan_update`),
in place on a local folder or an S3 prefix alike, one whole object at a time, the group's
metadata last (:func:`_publish`).

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
from etm.files import open_regular, write_whole

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
#: Months a shard (and an inner chunk) holds: a point's 20 years are one inner chunk (three
#: reads in all), and a month added or redone rewrites the shards of its 20 years. S3
#: rewrites objects whole, so shorter shards would write less per month but read more: 60
#: months wrote as much CPU for a month redone (9.3 CPU-s on benchmarks/series_reads.py,
#: most of it reading and encoding) and made a point's 20 years nine reads.
MONTHS = 240
#: What the store's group attribute ``etm`` is, and its layout's version.
FORMAT = "etm-series/1"
#: How its values are stored: a store of another layout is written anew (its months
#: copied) even when no COG changed.
LAYOUT = {
    "shard": SHARD, "chunk": CHUNK, "months": MONTHS, "codecs": f"shuffle4+zstd{ZSTD_LEVEL}",
}  # fmt: skip


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


def _metadata(data: bytes | None) -> dict | None:
    """A group's ``zarr.json`` if it is an etm store's, else None."""
    try:
        metadata = json.loads(data) if data is not None else None
        is_etms = metadata["attributes"]["etm"]["format"] == FORMAT
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    return metadata if is_etms else None


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


#: The data arrays' two families of chunk keys (``c/0/1/2`` and ``0/1/2``). A store
#: written anew goes to the family its metadata does not name, so that a reader holding
#: the old metadata reads the old objects until the new metadata replaces it.
KEY_FAMILIES = ({"name": "default", "separator": "/"}, {"name": "v2", "separator": "/"})


def chunk_key(encoding: dict, coords: Sequence[int]) -> str:
    """A chunk's key under its array, by the array's ``chunk_key_encoding``."""
    key = "/".join(str(c) for c in coords)
    return f"c/{key}" if encoding["name"] == "default" else key


def _family(key: str) -> int | None:
    """Which family of :data:`KEY_FAMILIES` a key under the store is a chunk of, if any."""
    _, _, under = key.partition("/")
    if under.startswith("c/"):
        return 0
    return 1 if under[:1].isdigit() else None


@dataclass(frozen=True)
class Update:
    """How a store is brought up to date."""

    #: Whether its objects are replaced in place; else it is written anew (every shard)
    #: under the other chunk keys.
    in_place: bool
    #: The shards along time (each :data:`MONTHS` months) to write.
    blocks: list[int]
    #: Index in :data:`KEY_FAMILIES` of the chunk keys written.
    family: int


def plan_update(old: dict | None, periods: list[str], changed: list[str], grid: Grid) -> Update:
    """What to write: in place, the time blocks holding a month read again, when every
    month of the old store keeps its index (months added after its last, or redone) on the
    same lattice and layout; otherwise every block, anew.

    ``old`` is the old store's group metadata (None if there is none).
    """
    blocks = -(-len(periods) // MONTHS)
    etm = old["attributes"]["etm"] if old else None
    family = 0
    if old:
        encoding = old["consolidated_metadata"]["metadata"][etm["product"]]["chunk_key_encoding"]
        family = 0 if encoding["name"] == "default" else 1
        same_place = (
            etm.get("layout") == LAYOUT
            and etm["transform"] == grid.transform
            and etm["shape"][1:] == [grid.height, grid.width]
            and periods[: len(etm["periods"])] == etm["periods"]
        )
        if same_place:
            touched = sorted({periods.index(period) // MONTHS for period in changed})
            return Update(True, touched, family)
    return Update(False, list(range(blocks)), 1 - family if old else 0)


def _create(path: str, product: str, periods: list[str], grid: Grid, attributes: dict, family: int):
    import zarr
    from numcodecs.zarr3 import Shuffle
    from zarr.codecs import ZstdCodec

    warnings.filterwarnings("ignore", "Numcodecs codecs are not in the Zarr version 3")
    group = zarr.open_group(path, mode="w", zarr_format=3)
    keys = KEY_FAMILIES[family]
    array = group.create_array(
        product, shape=(len(periods), grid.height, grid.width), dtype="float32",
        chunks=(MONTHS, CHUNK, CHUNK), shards=(MONTHS, SHARD, SHARD), fill_value=np.nan,
        compressors=[Shuffle(elementsize=4), ZstdCodec(level=ZSTD_LEVEL)],
        dimension_names=("time", "y", "x"), chunk_key_encoding=keys,
        attributes={"units": "mm"},
    )  # fmt: skip
    group.create_array(
        "time", shape=(len(periods),), dtype="int32", chunks=(MONTHS,), dimension_names=("time",),
        attributes={"units": "days since 1970-01-01", "calendar": "proleptic_gregorian"},
        chunk_key_encoding=keys,
    )  # fmt: skip
    for name, count in (("y", grid.height), ("x", grid.width)):
        group.create_array(
            name, shape=(count,), dtype="float64", chunks=(max(count, 1),),
            dimension_names=(name,), attributes={"units": "degrees"}, chunk_key_encoding=keys,
        )  # fmt: skip
    group.attrs["etm"] = attributes
    return group, array


def _write_axes(group, grid: Grid, periods: list[str], update: Update) -> None:
    """The pixel centres (written anew only: in place they do not change), and the
    months' first days of the blocks written."""
    if not update.in_place:
        for name, start, step in (("y", grid.north, -grid.yres), ("x", grid.west, grid.xres)):
            group[name][:] = start + step * (np.arange(group[name].shape[0]) + 0.5)
    days = np.array([_month_start_days(p) for p in periods], dtype="int32")
    for block in update.blocks:
        group["time"][block * MONTHS : (block + 1) * MONTHS] = days[
            block * MONTHS : (block + 1) * MONTHS
        ]


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
    array, grid: Grid, periods: list[str], blocks: list[int], previous, kept: dict[str, int],
    opened: dict,
) -> None:  # fmt: skip
    """Write the shards of the time blocks given: the months kept copied from the old store
    (``previous``), the others read from their COGs (``opened``: per month, its datasets
    and their windows on the grid)."""
    for block in blocks:
        first, last = block * MONTHS, min((block + 1) * MONTHS, len(periods))
        months = periods[first:last]
        copied = [(i, kept[p]) for i, p in enumerate(months) if p in kept]
        for col, row, width, height in _shard_windows(grid):
            values = np.full((len(months), height, width), np.nan, dtype="float32")
            if copied:
                new, old = zip(*copied, strict=True)
                values[list(new)] = previous.oindex[
                    list(old), row : row + height, col : col + width
                ]
            for i, period in enumerate(months):
                if period in opened:
                    _fill_month(values[i], opened[period], (col, row, width, height))
            array[first:last, row : row + height, col : col + width] = values


def _old_objects(listing: dict, product: str, update: Update, old: dict) -> list[str]:
    """The old store's objects the kept months are copied from: its array's metadata and
    the shards of the blocks written (every block when written anew)."""
    family = update.family if update.in_place else 1 - update.family
    blocks = update.blocks if update.in_place else None
    shards = [
        k for k in listing
        if _family(k) == family and k.startswith(f"{product}/")
        and (blocks is None or _block(k) in blocks)
    ]  # fmt: skip
    return ["zarr.json", f"{product}/zarr.json", *shards]


def _block(key: str) -> int:
    """The time block of a data chunk's key (``product/c/t/y/x`` or ``product/t/y/x``)."""
    return int(key.split("/")[-3])


def _publish(folder, written: str, update: Update, product: str) -> int:
    """Put the written objects in the store, in an order that keeps it readable: the
    chunks first (in place, each replaces one the old metadata names by the same months'
    values, or one it does not name), the arrays' metadata, the group's last (what readers
    open first). Returns how many objects were written."""
    from etm.objects import local_files

    files = local_files(written)
    metadata = sorted(k for k in files if k.endswith("zarr.json") and k != "zarr.json")
    chunks = sorted(set(files) - set(metadata) - {"zarr.json"})
    if update.in_place:
        # A shard emptied in place would be a missing object under the old metadata.
        prefixes = tuple(
            f"{product}/{chunk_key(KEY_FAMILIES[update.family], [b])}/" for b in update.blocks
        )
        emptied = [
            k for k in folder.digests
            if _family(k) == update.family and k.startswith(prefixes) and k not in files
        ]  # fmt: skip
        if emptied:
            return -1
    written_count = 0
    for key in [*chunks, *metadata, "zarr.json"]:
        with open(files[key], "rb") as stream:
            written_count += folder.put(key, stream.read())
    return written_count


def update_store(
    store: str, product: str, cogs: Sequence[SourceCog], scratch: str | None = None
) -> list[str]:
    """Bring a product's store up to date with its published COGs, reading again only the
    months whose COGs changed, and writing only the shards of the time blocks
    (:data:`MONTHS` months each) that hold them.

    The store is updated in place, object by object (:func:`plan_update`), so that a
    reader sees the old store or the new one: new shards first, metadata last. A store
    whose months would move (a month inserted before its last, another lattice or layout)
    is written anew under the chunk keys its metadata does not name, which the next update
    removes.

    Parameters
    ----------
    store : str
        The store's folder (``.../series/{product}.zarr``): local, or ``s3://bucket/key``.
    product : str
    cogs : sequence of SourceCog
        Every region month's COG, and the tile COGs of months the region lacks.
    scratch : str, optional
        A local folder for the objects written and read (a temporary one if None).

    Returns
    -------
    list of str
        The months read from their COGs (``YYYYMM``); empty if the store was up to date.

    Raises
    ------
    EtmError
        If no COG is given, or they are not on one lattice.
    """
    import tempfile

    from etm.objects import Folder

    if not cogs:
        raise EtmError(f"{store}: no published month of {product} to write a series of")
    with rasterio.Env(GDAL_CACHEMAX=64, **s3.gdal_options()):
        headers = [read_header(cog) for cog in cogs]
    grid = grid_of(headers)
    sources = month_sources(headers, grid)
    periods = sorted(sources)
    folder = Folder(store)
    old = _metadata(folder.get("zarr.json"))
    kept = kept_months(old["attributes"]["etm"] if old else None, sources, grid)
    changed = [period for period in periods if period not in kept]
    update = plan_update(old, periods, changed, grid)
    if update.in_place and not update.blocks:
        log.info("%s: up to date (%d months)", store, len(periods))
        return []
    with tempfile.TemporaryDirectory(dir=scratch) as work:
        count = _write(folder, work, update, product, cogs, grid, sources, kept, old)
        if count < 0:
            update = Update(False, plan_update(None, periods, [], grid).blocks, 1 - update.family)
            count = _write(folder, work, update, product, cogs, grid, sources, kept, old)
    log.info(
        "%s: %d months, %d read from their COGs, %d kept; %s, %d objects written", store,
        len(periods), len(changed), len(kept), "in place" if update.in_place else "anew", count,
    )  # fmt: skip
    return changed


def _write(folder, work: str, update: Update, product: str, cogs, grid, sources, kept, old) -> int:
    """Write an update into a scratch folder, then into the store (:func:`_publish`); -1
    if it would empty a shard in place, having written nothing."""
    import zarr

    periods = sorted(sources)
    listing = folder.list()
    # Chunks no metadata names: in place, the other family's (the store written anew at
    # an earlier update); anew, those of the family about to be written.
    other = 1 - update.family if update.in_place else update.family
    folder.delete([k for k in listing if _family(k) == other])
    attributes = dict(
        format=FORMAT, product=product, crs="EPSG:4326", transform=grid.transform,
        shape=[len(periods), grid.height, grid.width], periods=periods, sources=sources,
        layout=LAYOUT,
    )  # fmt: skip
    written = os.path.join(work, f"written-{update.in_place}")
    group, array = _create(written, product, periods, grid, attributes, update.family)
    _write_axes(group, grid, periods, update)
    previous = None
    if kept:
        keys = _old_objects(listing, product, update, old)
        previous = zarr.open_array(
            folder.readable(keys, os.path.join(work, "old")), path=product, mode="r"
        )
    paths = {cog.href: cog.path for cog in cogs}
    changed = [p for p in periods if p not in kept]
    with rasterio.Env(GDAL_CACHEMAX=64, **s3.gdal_options()):
        opened = {
            period: [(rasterio.open(paths[href]), window) for href, _, window in sources[period]]
            for period in changed
        }
        try:
            _write_shards(array, grid, periods, update.blocks, previous, kept, opened)
        finally:
            for datasets in opened.values():
                for dataset, _ in datasets:
                    dataset.close()
    with warnings.catch_warnings():  # not in the v3 spec yet; zarr and xarray read it
        warnings.simplefilter("ignore", UserWarning)
        zarr.consolidate_metadata(written)
    return _publish(folder, written, update, product)


def store_sources(publications: Sequence, product: str) -> list:
    """The publications a product's store is read from: every region month, and the tile
    months of the months the region lacks (:class:`etm.plan.Publication`)."""
    months = [p for p in publications if p.product == product and p.period.is_month]
    regions = {p.period for p in months if p.tile is None}
    return [p for p in months if p.tile is None or p.period not in regions]


def store_options(settings, publications: Sequence, product: str, named: Callable) -> dict:
    """The named parameters of :func:`write_from_inputs` known before the run: each COG of
    :func:`store_sources` where the job reads it (``named``: a config path to a local path
    or an ``s3://`` URL), its href and month, and the store."""
    from etm import plan

    found = store_sources(publications, product)
    return dict(
        cogs=[named(plan.published(settings, p.name, "tif")) for p in found],
        hrefs=[f"{p.name}.tif" for p in found],
        periods=[str(p.period) for p in found],
        store=named(f"{settings.output}/{STORE.format(product=product)}"),
    )


def write_from_inputs(
    cogs: Sequence[str], hrefs: Sequence[str], periods: Sequence[str], store: str,
    product: str, record: str,
) -> None:  # fmt: skip
    """Rule series_store: bring a product's store up to date with its published COGs,
    then record its months (the rule's output, written last).

    Parameters
    ----------
    cogs, hrefs, periods : sequence of str
        Each COG where the job reads it (local, or ``s3://``), its path relative to the
        output prefix, and its month.
    store : str
        The store's folder: local, or ``s3://bucket/key``.
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


#: The most a whole file's read takes (a store's zarr.json holds tens of kB).
MAX_DOCUMENT_BYTES = 16 << 20


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
            data = _fetch_s3(url, header)
        elif url.startswith(("http://", "https://")):
            data = _fetch_http(url, header, span)
        else:
            data = _fetch_local(url, span)
    except EtmError:
        raise
    except Exception as error:
        raise EtmError(f"{url}: cannot be read ({error})") from None
    if span is None and data is not None and len(data) > MAX_DOCUMENT_BYTES:
        raise EtmError(f"{url}: larger than {MAX_DOCUMENT_BYTES >> 20} MiB, not a file etm writes")
    return data


def _fetch_http(url: str, header: str | None, span: tuple[int, int] | int | None) -> bytes | None:
    request = urls.request(url, headers={"Range": header} if header else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            limit = MAX_DOCUMENT_BYTES + 1 if span is None else None
            data, whole = response.read(limit), response.status == 200
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
        body = s3.client().get_object(Bucket=bucket, Key=key, **extra)["Body"]
        return body.read(None if header else MAX_DOCUMENT_BYTES + 1)
    except ClientError as error:
        # Without s3:ListBucket, a missing key is AccessDenied.
        if error.response["Error"]["Code"] in ("NoSuchKey", "404", "AccessDenied", "403"):
            return None
        raise


def _fetch_local(path: str, span: tuple[int, int] | int | None) -> bytes | None:
    try:
        with open_regular(path) as stream:
            if isinstance(span, int):
                stream.seek(max(0, os.fstat(stream.fileno()).st_size - span))
                return stream.read()
            if span is not None:
                stream.seek(span[0])
                return stream.read(span[1])
            return stream.read(MAX_DOCUMENT_BYTES + 1)
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
    return _metadata(read(f"{prefix}/{STORE.format(product=product)}/zarr.json", None))


def _inner_chunk(metadata: dict, product: str) -> tuple[list[int], list[int], dict, dict]:
    array = metadata["consolidated_metadata"]["metadata"][product]
    shard = array["chunk_grid"]["configuration"]["chunk_shape"]
    (sharding,) = array["codecs"]
    configuration = sharding["configuration"]
    encoding = array["chunk_key_encoding"]
    if (
        sharding["name"] != "sharding_indexed"
        or configuration["index_location"] != "end"
        or encoding.get("configuration", {}).get("separator", "/") != "/"
    ):
        raise EtmError(f"series store of {product}: not sharded as etm writes it")
    return shard, configuration["chunk_shape"], configuration, encoding


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

    The metadata, then per :data:`MONTHS` months the shard's index and the point's inner
    chunk: three reads up to twenty years, five up to forty (fewer where a shard or a
    chunk holds no value).

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
    shard, inner, sharding, encoding = _inner_chunk(metadata, product)
    per_shard = [shard[1] // inner[1], shard[2] // inner[2]]
    store = f"{prefix}/{STORE.format(product=product)}"
    chunk_row, chunk_col = (row % shard[1]) // inner[1], (col % shard[2]) // inner[2]
    entry = chunk_row * per_shard[1] + chunk_col
    values = np.full(len(periods), np.nan, dtype="float32")
    for block in range(-(-len(periods) // shard[0])):
        key = chunk_key(encoding, [block, row // shard[1], col // shard[2]])
        url = f"{store}/{product}/{key}"
        index = read(url, per_shard[0] * per_shard[1] * 16 + 4)
        if index is None:
            continue
        offset, size = struct.unpack_from("<QQ", index, entry * 16)
        if offset != 2**64 - 1:
            chunk = _decode(read(url, (offset, size)), sharding["codecs"], inner)
            first = block * shard[0]
            values[first : first + shard[0]] = chunk[
                : len(periods) - first, row % inner[1], col % inner[2]
            ]
    cogs = [pixel_cog(etm["sources"][period], col, row) for period in periods]
    return StoredPoint(periods, [float(v) for v in values], cogs, bbox)
