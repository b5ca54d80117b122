"""A point's or a polygon's monthly series, read straight from the published region COGs.

A point's series is read from the product's series store (:mod:`etm.series`) where the
output prefix has one: three reads for every month. Otherwise, and for polygons, the index
of the product's region months (``<product>-monthly/items.parquet``, one small file
whatever the archive's size) says which COGs hold them; each COG is then read through
GDAL's range requests (local paths, ``s3://`` or ``https://``): its header, and the few
blocks the point or the polygon covers, never the whole file.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import re
import struct
import urllib.request
from dataclasses import dataclass

import numpy as np
import rasterio
import rasterio.features
import rasterio.windows

from etm import s3, series, urls
from etm.errors import EtmError
from etm.files import read_regular
from etm.plan import Period, collection_id, index_hrefs


@dataclass(frozen=True)
class Reading:
    """One period's value: at a point, or a polygon's mean and its valid pixel count; and
    the COG it was read from (relative to the output prefix), for a point."""

    period: str
    value: float
    valid_pixels: int | None = None
    cog: str | None = None


def output_prefix(source: str) -> str:
    """The output prefix of a catalog: given itself, or its ``catalog.json``."""
    if source.endswith("/catalog.json") or source == "catalog.json":
        return posixpath.dirname(source) or "."
    return source.rstrip("/")


def read_bytes(url: str, most: int, hint: str = "is it an etm output prefix?") -> bytes:
    """A small file from a local path, ``s3://`` or ``http(s)://``.

    Parameters
    ----------
    most : int
        Bytes it may hold: what is larger is refused unread (``/dev/zero``, a huge file).
    hint : str
        What the error line suggests.

    Raises
    ------
    EtmError
        Naming the file, if it cannot be read or is larger.
    """
    try:
        if url.startswith("s3://"):
            bucket, key = s3.split(url.removeprefix("s3://"))
            data = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read(most + 1)
        elif url.startswith(("http://", "https://")):
            with urllib.request.urlopen(urls.request(url), timeout=60) as response:
                data = response.read(most + 1)
        else:
            data = read_regular(url, most + 1)
    except EtmError:
        raise
    except Exception as error:
        raise EtmError(f"{url}: cannot be read ({error}); {hint}") from None
    if len(data) > most:
        raise EtmError(f"{url}: is larger than {most / 2**20:g} MiB; {hint}")
    return data


#: Largest product index read (GeoParquet): the team's 20 years are 42 KB a product.
MAX_INDEX_BYTES = 256 << 20
#: Largest polygon file read: a county's boundary is a few MB of GeoJSON.
MAX_POLYGON_BYTES = 64 << 20

MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def month_span(start: str | None, end: str | None) -> tuple[str, str]:
    """The first and last month (``YYYYMM``) of ``--start`` and ``--end`` (``YYYY-MM``,
    either may be None: no bound).

    Raises
    ------
    EtmError
        If either is not a month, or start is after end.
    """
    bounds = []
    for option, text, unbounded in (("--start", start, "000001"), ("--end", end, "999912")):
        match = MONTH.fullmatch(text) if text is not None else None
        if text is not None and not match:
            raise EtmError(f"{option} {text!r} is not a month: give YYYY-MM, e.g. 2020-07")
        bounds.append(match[1] + match[2] if match else unbounded)
    if bounds[0] > bounds[1]:
        raise EtmError(f"--start {start} is after --end {end}: give the first month first")
    return bounds[0], bounds[1]


def resolve(folder: str, href: str) -> str:
    """An href relative to a folder (a local path or a URL), as an absolute path or URL."""
    scheme, separator, path = folder.rpartition("://")
    if not separator:
        return os.path.abspath(os.path.join(folder, href))
    return f"{scheme}{separator}{posixpath.normpath(posixpath.join(path, href))}"


def index_items(source: str, collection: str) -> list[dict]:
    """A Collection's Items, read from its GeoParquet index alone (one request), their
    hrefs under ``source`` (:func:`read_from`): as odc-stac (through
    ``pystac.Item.from_dict``) and stackstac load them.

    Parameters
    ----------
    source : str
        The output prefix (local, ``s3://`` or ``https://``), or its ``catalog.json``.
    collection : str
        The Collection's id, e.g. ``etasw-monthly``.

    Raises
    ------
    EtmError
        If the index cannot be read, or holds no Item.
    """
    import pyarrow
    import pyarrow.parquet
    import stac_geoparquet.arrow

    index = f"{output_prefix(source)}/{index_hrefs(collection)[1]}"
    try:
        table = pyarrow.parquet.read_table(pyarrow.BufferReader(read_bytes(index, MAX_INDEX_BYTES)))
    except pyarrow.ArrowInvalid as error:
        raise EtmError(f"{index}: not a GeoParquet index ({error})") from None
    items = list(stac_geoparquet.arrow.stac_table_to_items(table))
    if not items:
        raise EtmError(f"{index}: no Items of {collection}; was it published?")
    prefix = resolve(output_prefix(source), ".")
    return [read_from(item, prefix) for item in items]


def read_from(item: dict, prefix: str) -> dict:
    """An index Item, its hrefs under its catalog's folder (as its ``root`` link names it)
    naming the same files under ``prefix``, where the index was read: the index names the
    output prefix as the run was told (``public_url``, ``s3://``), which may not be where
    this reader reads it (a copy; S3 for an HTTPS address)."""
    root = next(link["href"] for link in item["links"] if link["rel"] == "root")
    folder = posixpath.dirname(root) + "/"

    def moved(target: dict) -> dict:
        href = target["href"]
        return (
            {**target, "href": f"{prefix}/{href.removeprefix(folder)}"}
            if href.startswith(folder)
            else target
        )

    return {
        **item,
        "links": [moved(link) for link in item["links"]],
        "assets": {key: moved(asset) for key, asset in item["assets"].items()},
    }


def region_months(source: str, product: str, start: str | None, end: str | None) -> list[dict]:
    """The Items of the region's months of a product, from start to end (YYYY-MM), from
    their Collection's index (:func:`index_items`).

    Raises
    ------
    EtmError
        If start or end is no month, the index cannot be read, or holds no such month.
    """
    first, last = month_span(start, end)
    items = index_items(source, collection_id(product, None, Period(2000, 1)))
    chosen = [item for item in items if first <= period_of(item) <= last]
    if not chosen:
        raise EtmError(f"no month of {product} between {start or '…'} and {end or '…'}")
    return sorted(chosen, key=lambda item: item["properties"]["datetime"])


def period_of(item: dict) -> str:
    """An index Item's period (its id is ``{place}_{product}_{period}``)."""
    return item["id"].rsplit("_", 1)[1]


def cog_href(prefix: str, item: dict) -> str:
    """An index Item's COG (its href absolute, :func:`index_items`), relative to the
    output prefix."""
    return item["assets"]["data"]["href"].removeprefix(resolve(prefix, ".") + "/")


def cog_url(item: dict) -> str:
    """An index Item's COG as GDAL opens it: without the user and password of an
    ``https://`` prefix, which GDAL gets as basic authentication (:func:`etm.urls.gdal_options`)."""
    return urls.without_userinfo(item["assets"]["data"]["href"])


def outside(lon: float, lat: float, bbox: tuple[float, float, float, float]) -> EtmError | None:
    """The error of a point outside the region's bbox (west, south, east, north), if it is."""
    west, south, east, north = bbox
    if west <= lon < east and south < lat <= north:
        return None
    return EtmError(
        f"point ({lon}, {lat}) is outside the published region (west {west:.4f}, south "
        f"{south:.4f}, east {east:.4f}, north {north:.4f})"
    )


def stored_series(
    prefix: str, product: str, lon: float, lat: float, start: str | None, end: str | None
) -> list[Reading] | None:
    """A point's months from the product's series store, from start to end (YYYY-MM);
    None if the output prefix has no store of the product.

    Raises
    ------
    EtmError
        If the point is outside the store's region, or it has no such months.
    """
    try:
        point = series.read_point(prefix, product, lon, lat)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, struct.error) as error:
        raise EtmError(
            f"the series store of {product} under {prefix} is not as etm writes it "
            f"({type(error).__name__}: {error}); publish it again, or remove it"
        ) from None
    if point is None:
        return None
    if error := outside(lon, lat, point.bbox):
        raise error
    first, last = month_span(start, end)
    readings = [
        Reading(period, value, cog=cog)
        for period, value, cog in zip(point.periods, point.values, point.cogs, strict=True)
        if first <= period <= last and cog
    ]
    if not readings:
        raise EtmError(f"no month of {product} between {start or '…'} and {end or '…'}")
    return readings


def point_months(
    source: str, product: str, lon: float, lat: float, start: str | None, end: str | None
) -> list[dict]:
    """The Items of a product's months at a point, from start to end (YYYY-MM), from their
    Collections' indexes (:func:`index_items`): the region's, and for a month the region
    lacks (``missing_chips: skip``), the first tile's (by id) that holds the point.

    Raises
    ------
    EtmError
        If start or end is no month, neither index can be read, the point is outside the
        region (or, without a region month, every tile), or no month is published between
        start and end.
    """
    first, last = month_span(start, end)
    month = Period(2000, 1)
    try:
        region, lacking = index_items(source, collection_id(product, None, month)), None
    except EtmError as error:  # every region month skipped: the tiles' may be published
        region, lacking = [], error
    try:
        tiles = index_items(source, collection_id(product, "tile", month))
    except EtmError:
        tiles = []
    if lacking and not tiles:
        raise lacking
    corners = list(zip(*[item["bbox"] for item in region or tiles], strict=True))
    bbox = (min(corners[0]), min(corners[1]), max(corners[2]), max(corners[3]))
    if error := outside(lon, lat, bbox):
        raise error
    chosen = {period_of(item): item for item in region}
    for item in sorted(tiles, key=lambda item: item["id"]):
        if period_of(item) not in chosen and not outside(lon, lat, item["bbox"]):
            chosen[period_of(item)] = item
    picked = [chosen[period] for period in sorted(chosen) if first <= period <= last]
    if not picked:
        raise EtmError(f"no month of {product} between {start or '…'} and {end or '…'}")
    return picked


def point_series(
    source: str, product: str, lon: float, lat: float, start: str | None = None,
    end: str | None = None,
) -> list[Reading]:  # fmt: skip
    """The product's monthly values (mm) at a point, NaN where the model has none, each
    with the COG it comes from: from the product's series store if there is one, else
    from the COGs. A month the region lacks (``missing_chips: skip``) is its tile's, where
    that tile's month is published.

    Parameters
    ----------
    source : str
        The output prefix (local, ``s3://`` or ``https://``), or its ``catalog.json``.
    product : str
    lon, lat : float
        Degrees east and north (EPSG:4326).
    start, end : str, optional
        First and last month, ``YYYY-MM``.

    Raises
    ------
    EtmError
        If the point is outside the region, or the catalog has no such months.
    """
    prefix = output_prefix(source)
    stored = stored_series(prefix, product, lon, lat, start, end)
    if stored is not None:
        return stored
    readings = []
    with rasterio.Env(**s3.gdal_options(), **urls.gdal_options(source)):
        for item in point_months(source, product, lon, lat, start, end):
            with rasterio.open(cog_url(item)) as cog:
                row, col = cog.index(lon, lat)
                value = cog.read(1, window=rasterio.windows.Window(col, row, 1, 1))[0, 0]
            readings.append(Reading(period_of(item), float(value), cog=cog_href(prefix, item)))
    return readings


def polygon_series(
    source: str, product: str, polygon: dict, start: str | None = None, end: str | None = None
) -> list[Reading]:
    """The product's monthly mean (mm) over a polygon (GeoJSON geometry, EPSG:4326), and
    how many of the pixels whose centre it holds have a value."""
    items = region_months(source, product, start, end)
    bounds = polygon_bounds(polygon)
    check_within(bounds, items[0]["bbox"])
    readings = []
    with rasterio.Env(**s3.gdal_options(), **urls.gdal_options(source)):
        for item in items:
            with rasterio.open(cog_url(item)) as cog:
                left, top = ~cog.transform @ (bounds[0], bounds[3])
                right, bottom = ~cog.transform @ (bounds[2], bounds[1])
                rows = (math.floor(top), math.ceil(bottom))
                window = rasterio.windows.Window.from_slices(
                    rows, (math.floor(left), math.ceil(right))
                ).intersection(rasterio.windows.Window(0, 0, cog.width, cog.height))
                values = cog.read(1, window=window)
                inside = rasterio.features.geometry_mask(
                    [polygon], values.shape, cog.window_transform(window), invert=True
                )
            picked = values[inside & ~np.isnan(values)]
            mean = float(picked.mean()) if picked.size else math.nan
            readings.append(Reading(period_of(item), mean, int(picked.size)))
    if not any(reading.valid_pixels for reading in readings):
        raise EtmError("the polygon holds no pixel centre with a value in any month")
    return readings


def polygon_from(path: str) -> dict:
    """The geometry of a GeoJSON file: itself, a Feature's, or a FeatureCollection's
    first Feature's.

    Raises
    ------
    EtmError
        If the file cannot be read or is not GeoJSON.
    """
    try:
        found = json.loads(read_bytes(path, MAX_POLYGON_BYTES, "give a GeoJSON file").decode())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EtmError(f"{path}: not GeoJSON ({error})") from None
    except RecursionError:
        raise EtmError(f"{path}: not GeoJSON (nested beyond any geometry)") from None
    if isinstance(found, dict) and found.get("type") == "FeatureCollection":
        features = found.get("features")
        found = features[0] if isinstance(features, list) and features else {}
    if isinstance(found, dict) and found.get("type") == "Feature":
        found = found.get("geometry") or {}
    return found


def polygon_bounds(geometry: dict) -> tuple[float, float, float, float]:
    """A GeoJSON polygon's bounds (west, south, east, north).

    Raises
    ------
    EtmError
        If it is no Polygon or MultiPolygon with coordinates.
    """
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind not in ("Polygon", "MultiPolygon") or not geometry.get("coordinates"):
        raise EtmError(
            f"the polygon's geometry is {kind or 'missing'}: give a GeoJSON Polygon or "
            "MultiPolygon (a geometry, a Feature or a FeatureCollection whose first has one)"
        )
    # Checked here: GDAL reads other values as garbage, or crashes on them.
    if not (polygons := _polygons(kind, geometry["coordinates"])):
        raise EtmError(
            f"the polygon's coordinates are not those of a {kind}: lists of rings of at least "
            "4 positions"
        )
    for position in (position for rings in polygons for ring in rings for position in ring):
        if not (
            isinstance(position, list)
            and len(position) in (2, 3)
            and all(type(value) in (int, float) and -1e6 < value < 1e6 for value in position)
        ):
            raise EtmError(
                f"the polygon's coordinates cannot be read: {str(position)[:40]} is not a "
                "position of 2 or 3 finite numbers of degrees"
            )
    shells = [position for rings in polygons for position in rings[0]]  # holes lie inside
    lons, lats = [p[0] for p in shells], [p[1] for p in shells]
    return min(lons), min(lats), max(lons), max(lats)


def _polygons(kind: str, coordinates: object) -> list[list[list]]:
    """A Polygon's or MultiPolygon's polygons, each its rings (its shell first); none if
    they are not lists of rings of at least 4 positions."""
    polygons = [coordinates] if kind == "Polygon" else coordinates
    if not isinstance(polygons, list) or not all(isinstance(p, list) and p for p in polygons):
        return []
    rings = [ring for polygon in polygons for ring in polygon]
    return polygons if all(isinstance(ring, list) and len(ring) >= 4 for ring in rings) else []


def check_within(bounds: tuple[float, float, float, float], region: list[float]) -> None:
    """Refuse a polygon whose bounds are not all inside the region's bbox: its mean would
    leave out what is outside.

    Raises
    ------
    EtmError
        Naming the region's bounds, whether the polygon is wholly or partly outside.
    """
    west, south, east, north = region
    where = (
        f"the published region (west {west:.4f}, south {south:.4f}, east {east:.4f}, "
        f"north {north:.4f})"
    )
    shown = ", ".join(f"{value:.4f}" for value in bounds)
    if bounds[0] >= east or bounds[2] <= west or bounds[1] >= north or bounds[3] <= south:
        raise EtmError(f"the polygon (bounds {shown}) is outside {where}")
    if bounds[0] < west or bounds[2] > east or bounds[1] < south or bounds[3] > north:
        raise EtmError(
            f"the polygon (bounds {shown}) is partly outside {where}: its mean would leave "
            "out that part; clip it to the region"
        )


def as_csv(readings: list[Reading]) -> str:
    """CSV for a spreadsheet: period (YYYY-MM) and value in mm (empty where NaN), with the
    9 significant digits that give back the COG's float32 exactly; at a point, the COG
    the value is from (relative to the output prefix; empty where none holds the point)."""
    polygon = readings[0].valid_pixels is not None
    lines = ["period,mean_mm,valid_pixels" if polygon else "period,value_mm,cog"]
    for reading in readings:
        value = "" if math.isnan(reading.value) else f"{reading.value:.9g}"
        label = Period.parse(reading.period).label
        last = reading.valid_pixels if polygon else reading.cog or ""
        lines.append(f"{label},{value},{last}")
    return "\n".join(lines) + "\n"
