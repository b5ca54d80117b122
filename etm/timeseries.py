"""A point's or a polygon's monthly series, read straight from the published region COGs.

A point's series is read from the product's series store (:mod:`etm.series`) where the
output prefix has one: three reads for every month. Otherwise, and for polygons, the
published index (``items.ndjson``) says which COGs hold the product's months; each
COG is then read through GDAL's range requests (local paths, ``s3://`` or ``https://``):
its header, and the few blocks the point or the polygon covers, never the whole file.
"""

from __future__ import annotations

import json
import math
import posixpath
import urllib.request
from dataclasses import dataclass

import numpy as np
import rasterio
import rasterio.features
import rasterio.windows

from etm import s3, series
from etm.errors import EtmError
from etm.plan import Period, collection_id
from etm.stac import INDEX


@dataclass(frozen=True)
class Reading:
    """One period's value: at a point, or a polygon's mean and its valid pixel count; and
    the COG it was read from (relative to the output prefix), for a point."""

    period: str
    value: float
    valid_pixels: int | None = None
    cog: str | None = None


def output_prefix(source: str) -> str:
    """The output prefix of a catalog: given itself, or its ``catalog.json`` or index."""
    for name in ("catalog.json", INDEX):
        if source.endswith(f"/{name}") or source == name:
            return posixpath.dirname(source) or "."
    return source.rstrip("/")


def read_text(url: str) -> str:
    """A small file's text from a local path, ``s3://`` or ``http(s)://``.

    Raises
    ------
    EtmError
        Naming the file, if it cannot be read.
    """
    try:
        if url.startswith("s3://"):
            bucket, key = s3.split(url.removeprefix("s3://"))
            return s3.client().get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        if url.startswith(("http://", "https://")):
            with urllib.request.urlopen(url, timeout=60) as response:
                return response.read().decode()
        with open(url) as stream:
            return stream.read()
    except EtmError:
        raise
    except Exception as error:
        raise EtmError(f"{url}: cannot be read ({error}); is it an etm output prefix?") from None


def region_months(source: str, product: str, start: str | None, end: str | None) -> list[dict]:
    """The index's Items of the region's months of a product, from start to end (YYYY-MM)."""
    prefix = output_prefix(source)
    lines = read_text(f"{prefix}/{INDEX}").splitlines()
    wanted = collection_id(product, None, Period(2000, 1))
    items = [json.loads(line) for line in lines if line.strip()]
    items = [item for item in items if item["collection"] == wanted]
    if not items:
        raise EtmError(f"{prefix}/{INDEX}: no region months of {product}; was it published?")
    first, last = (start or "0000-00").replace("-", ""), (end or "9999-99").replace("-", "")
    chosen = [item for item in items if first <= period_of(item) <= last]
    if not chosen:
        raise EtmError(f"no month of {product} between {start or '…'} and {end or '…'}")
    return sorted(chosen, key=lambda item: item["properties"]["datetime"])


def period_of(item: dict) -> str:
    """An index Item's period (its id is ``{place}_{product}_{period}``)."""
    return item["id"].rsplit("_", 1)[1]


def cog_href(item: dict) -> str:
    """An index Item's COG, relative to the output prefix."""
    return item["assets"]["data"]["href"].removeprefix("./")


def cog_url(prefix: str, item: dict) -> str:
    return f"{prefix}/{cog_href(item)}"


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
    point = series.read_point(prefix, product, lon, lat)
    if point is None:
        return None
    if error := outside(lon, lat, point.bbox):
        raise error
    first, last = (start or "0000-00").replace("-", ""), (end or "9999-99").replace("-", "")
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
    """The index's Items of a product's months at a point, from start to end (YYYY-MM): the
    region's, and for a month the region lacks (``missing_chips: skip``), the first tile's
    (by id) that holds the point.

    Raises
    ------
    EtmError
        If the point is outside the region (or, without a region month, every tile), or
        no month is published between start and end.
    """
    prefix = output_prefix(source)
    items = [json.loads(line) for line in read_text(f"{prefix}/{INDEX}").splitlines() if line]
    month = Period(2000, 1)
    region = [i for i in items if i["collection"] == collection_id(product, None, month)]
    tiles = [i for i in items if i["collection"] == collection_id(product, "tile", month)]
    if not region and not tiles:
        raise EtmError(f"{prefix}/{INDEX}: no months of {product}; was it published?")
    corners = list(zip(*[item["bbox"] for item in region or tiles], strict=True))
    bbox = (min(corners[0]), min(corners[1]), max(corners[2]), max(corners[3]))
    if error := outside(lon, lat, bbox):
        raise error
    chosen = {period_of(item): item for item in region}
    for item in sorted(tiles, key=lambda item: item["id"]):
        if period_of(item) not in chosen and not outside(lon, lat, item["bbox"]):
            chosen[period_of(item)] = item
    first, last = (start or "0000-00").replace("-", ""), (end or "9999-99").replace("-", "")
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
    with rasterio.Env(**s3.gdal_options()):
        for item in point_months(source, product, lon, lat, start, end):
            with rasterio.open(cog_url(prefix, item)) as cog:
                row, col = cog.index(lon, lat)
                value = cog.read(1, window=rasterio.windows.Window(col, row, 1, 1))[0, 0]
            readings.append(Reading(period_of(item), float(value), cog=cog_href(item)))
    return readings


def polygon_series(
    source: str, product: str, polygon: dict, start: str | None = None, end: str | None = None
) -> list[Reading]:
    """The product's monthly mean (mm) over a polygon (GeoJSON geometry, EPSG:4326), and
    how many of the pixels whose centre it holds have a value."""
    items = region_months(source, product, start, end)
    prefix = output_prefix(source)
    bounds = rasterio.features.bounds(polygon)
    west, south, east, north = items[0]["bbox"]
    if bounds[0] >= east or bounds[2] <= west or bounds[1] >= north or bounds[3] <= south:
        raise EtmError(
            f"the polygon {bounds} is outside the published region (west {west:.4f}, south "
            f"{south:.4f}, east {east:.4f}, north {north:.4f})"
        )
    readings = []
    with rasterio.Env(**s3.gdal_options()):
        for item in items:
            with rasterio.open(cog_url(prefix, item)) as cog:
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
