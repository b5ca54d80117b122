"""A static STAC catalog of the published COGs, written with pystac and rio-stac.

Layout under the output prefix; every link of its JSON files is relative, so the catalog
works wherever the prefix is served from or copied to:

    catalog.json                                  root catalog, its Collections as children
    <product>-<kind>/collection.json              one Collection per product and kind
    <product>-<kind>/items.ndjson                 its Items, one a line (hrefs absolute)
    <product>-<kind>/items.parquet                the same as GeoParquet (stac-geoparquet)
    <product>-<kind>/periods.json                 a region one's periods, for the map page
    tiles/<tile>/<product>/<YYYY>/<name>.json     an Item beside each tile COG
    mosaic/<product>/<YYYY>/<name>.json           an Item beside each region COG

The kinds (:data:`etm.plan.KINDS`) keep apart what a load must never mix: the region's
months (``etasw-monthly``), its years (``etasw-yearly``), and the tiles' months and years.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import logging
import math
import os
import posixpath
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pystac
import rasterio
from pystac.extensions.file import FileExtension
from rio_stac import create_stac_item

from etm.errors import StorageError
from etm.files import whole, write_whole
from etm.plan import INDEXES, PERIODS, Period, collection_href, collection_kind
from etm.products import PRODUCTS

CATALOG = "catalog.json"
REGION = "region"
PARQUET = "application/vnd.apache.parquet"
#: How each kind of Collection describes its Items.
KIND_TITLES = {
    "monthly": "region, monthly",
    "yearly": "region, yearly",
    "tiles-monthly": "10-degree tiles, monthly",
    "tiles-yearly": "10-degree tiles, yearly",
}

#: The COG asset's key in a month's Item and in a year's.
ASSET = {"month": "data", "year": "year"}
#: The projection extension's version: v1.2.0, the last to define ``proj:epsg`` (v2.0.0
#: forbids it), which stackstac 0.5 needs, beside ``proj:code``, which v2 readers want.
PROJECTION = "https://stac-extensions.github.io/projection/v1.2.0/schema.json"

log = logging.getLogger(__name__)

# pystac-core 1.15.2 finds its extensions on first use, which is unsafe in threads: it marks
# them found, then loads them, and a second thread meanwhile uses none (writing an Item
# asks them for its links; mosaic jobs share a process). Found here once: Python runs a
# module's import once.
pystac.EXTENSION_HOOKS._discover()


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """First and last instant of a period: ``YYYYMM`` (a month) or ``YYYY`` (a year)."""
    months = Period.parse(period).months()
    year, first, last = months[0].year, months[0].month, months[-1].month
    end_day = calendar.monthrange(year, last)[1]
    return (
        datetime(year, first, 1, tzinfo=UTC),
        datetime(year, last, end_day, 23, 59, 59, tzinfo=UTC),
    )


def relative_link(rel: str, target: str, start: str) -> pystac.Link:
    """A JSON link from the file ``start`` to ``target``, both relative to the output prefix."""
    href = posixpath.relpath(target, posixpath.dirname(start) or ".")
    return pystac.Link(rel, href if href.startswith(".") else f"./{href}", pystac.MediaType.JSON)


def multihash_sha256(path: str) -> str:
    """A file's SHA-256 as a multihash (``1220`` then the digest), as ``file:checksum``."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return f"1220{digest.hexdigest()}"


def _embedded_statistics(cog: str) -> dict:
    """Exact band statistics, as the COG driver embedded them (STATISTICS=YES).

    Only finite ones: JSON has no NaN or infinity (GDAL writes none for an all-NaN band).
    """
    with rasterio.open(cog) as source:
        tags = source.tags(1)
    found = {
        key: float(tags[f"STATISTICS_{key.upper()}"])
        for key in ("minimum", "maximum", "mean", "stddev", "valid_percent")
        if f"STATISTICS_{key.upper()}" in tags
    }
    return {key: value for key, value in found.items() if math.isfinite(value)}


def item_for(
    cog: str,
    *,
    href: str,
    collection: str,
    product: str,
    tile: str | None,
    period: str,
    aggregation: str | None,
    thumbnail: str | None = None,
) -> pystac.Item:
    """The STAC Item of one published COG.

    Parameters
    ----------
    cog : str
        The COG as a local file, read for geometry, projection and statistics.
    href : str
        Where the Item goes, relative to the output prefix; the COG is beside it with the
        same name.
    collection : str
        Its Collection's id (:func:`etm.plan.collection_id`).
    product : str
    tile : str or None
        None for the region mosaic.
    period : str
        ``YYYYMM`` or ``YYYY``.
    aggregation : {"sum", "mean"} or None
        How a year was made from its months; None for a month.
    thumbnail : str, optional
        File name of its quicklook PNG, beside the Item.

    Returns
    -------
    pystac.Item
        Named for filtering by ``etm:product``, ``etm:place`` (a tile or ``region``) and
        ``etm:period`` (``month`` or ``year``; a year also has ``etm:aggregation``). Its
        time: ``start_datetime``/``end_datetime`` its bounds, and ``datetime`` the start of a
        month, null for a year (never to be taken for its January). Its COG asset is
        ``data`` for a month, ``year`` for a year, so that a load of both kinds keeps them
        in two variables. The projection extension v1.2.0 (:data:`PROJECTION`), the
        raster extension (``nodata: "nan"``, ``unit: "mm"``, exact statistics), and the
        COG typed as cloud-optimized, with ``file:size`` and ``file:checksum``.
    """
    start, end = period_bounds(period)
    place = tile or REGION
    name = posixpath.basename(href).removesuffix(".json")
    is_month = Period.parse(period).is_month
    properties = {"etm:product": product, "etm:place": place}
    properties["etm:period"] = "month" if is_month else "year"
    if aggregation:
        properties["etm:aggregation"] = aggregation
    item = create_stac_item(
        cog,
        id=f"{place}_{product}_{period}",
        input_datetime=start,
        collection=collection,
        properties=properties,
        asset_name=ASSET["month" if is_month else "year"],
        asset_href=f"./{name}.tif",
        asset_roles=["data"],
        # rio-stac's automatic media type does not say cloud-optimized.
        asset_media_type=pystac.MediaType.COG,
        with_proj=True,
        with_raster=True,
        # Its statistics and histogram, from a decimated read, give way to the COG's exact
        # statistics below: a small read (0.016 instead of 0.05 CPU-s a real-size tile).
        raster_max_size=64,
    )
    # rio-stac writes the projection extension v1.1 (proj:epsg): v1.2.0 adds proj:code.
    item.stac_extensions = [
        PROJECTION if "/projection/" in uri else uri for uri in item.stac_extensions
    ]
    item.properties["proj:code"] = f"EPSG:{item.properties['proj:epsg']}"
    item.datetime = start if is_month else None
    item.common_metadata.start_datetime = start
    item.common_metadata.end_datetime = end
    item.common_metadata.title = f"{PRODUCTS[product].title}, {place}, {period}"
    asset = item.assets[ASSET["month" if is_month else "year"]]
    band = asset.extra_fields["raster:bands"][0]
    band.pop("histogram", None)
    band.pop("statistics", None)
    band.update(unit="mm", nodata="nan")
    statistics = _embedded_statistics(cog)
    if statistics:
        band["statistics"] = statistics
    data = FileExtension.ext(asset, add_if_missing=True)
    data.size, data.checksum = os.path.getsize(cog), multihash_sha256(cog)
    if thumbnail:
        item.add_asset(
            "thumbnail",
            pystac.Asset(
                f"./{thumbnail}", title="Quicklook", media_type=pystac.MediaType.PNG,
                roles=["thumbnail"],
            ),
        )  # fmt: skip
    item.clear_links()
    item.add_link(relative_link(pystac.RelType.ROOT, CATALOG, href))
    item.add_link(relative_link(pystac.RelType.PARENT, collection_href(collection), href))
    item.add_link(relative_link(pystac.RelType.COLLECTION, collection_href(collection), href))
    return item


def as_json(stac_object: pystac.STACObject) -> str:
    """A STAC object as JSON with its own (relative) links.

    Raises ValueError rather than write NaN or infinity, which are not JSON.
    """
    document = stac_object.to_dict(include_self_link=False, transform_hrefs=False)
    return json.dumps(document, allow_nan=False)


def write(stac_object: pystac.STACObject, path: str) -> None:
    """Write a STAC object as :func:`as_json`, whole or not at all."""
    write_whole(as_json(stac_object), path)


def collection_for(
    collection: str,
    items: Sequence[dict],
    hrefs: Sequence[str],
    *,
    license: str,
    license_url: str | None = None,
) -> pystac.Collection:
    """One Collection: its extent the union of its Items', linking each of them.

    Parameters
    ----------
    collection : str
        Its id (:func:`etm.plan.collection_id`).
    items : sequence of dict
        Its Items as written.
    hrefs : sequence of str
        Where each Item is, relative to the output prefix.
    license : str
        SPDX identifier, or ``other``.
    license_url : str, optional
        Where the license text is: a ``license`` link.
    """
    kind = collection_kind(collection)
    product = collection.removesuffix(f"-{kind}")
    west, south, east, north = zip(*(item["bbox"] for item in items), strict=True)
    starts = [datetime.fromisoformat(i["properties"]["start_datetime"]) for i in items]
    ends = [datetime.fromisoformat(i["properties"]["end_datetime"]) for i in items]
    period = "month" if kind.endswith("monthly") else "year"
    aggregations = sorted({item["properties"].get("etm:aggregation") for item in items} - {None})
    spec = PRODUCTS[product]
    result = pystac.Collection(
        id=collection,
        title=f"{spec.title}, {KIND_TITLES[kind]}",
        description=(
            f"{spec.description} Unit: mm. Cloud-Optimized GeoTIFFs (float32, NaN where the "
            f"model has no value), {KIND_TITLES[kind]}"
            + ("" if period == "month" else f" ({aggregations[0]} of the 12 months)")
            + ". Other kinds are in their own Collections (see the catalog)."
        ),
        license=license,
        extent=pystac.Extent(
            pystac.SpatialExtent([[min(west), min(south), max(east), max(north)]]),
            pystac.TemporalExtent([[min(starts), max(ends)]]),
        ),
        summaries=pystac.Summaries(
            {
                "etm:product": [product],
                "etm:place": sorted({item["properties"]["etm:place"] for item in items}),
                "etm:period": [period],
                **({"etm:aggregation": aggregations} if aggregations else {}),
            }
        ),
    )
    result.item_assets = {
        ASSET[period]: pystac.ItemAssetDefinition.create(
            title=spec.title, description=f"{spec.description} Unit: mm.",
            media_type=pystac.MediaType.COG, roles=["data"],
        ),
    }  # fmt: skip
    if not kind.startswith("tiles"):
        result.item_assets["thumbnail"] = pystac.ItemAssetDefinition.create(
            title="Quicklook", description=None, media_type=pystac.MediaType.PNG,
            roles=["thumbnail"],
        )  # fmt: skip
    ndjson, parquet = INDEXES
    result.add_asset("items-ndjson", pystac.Asset(
        f"./{ndjson}", title="Its Items, one a line", media_type="application/x-ndjson",
        roles=["metadata"],
    ))  # fmt: skip
    result.add_asset("items-parquet", pystac.Asset(
        f"./{parquet}", title="Its Items as GeoParquet (stac-geoparquet)", media_type=PARQUET,
        roles=["collection-mirror"],
    ))  # fmt: skip
    if not kind.startswith("tiles"):
        result.add_asset("periods", pystac.Asset(
            f"./{PERIODS}", title="Its periods, COGs and value ranges, for the map page",
            media_type=pystac.MediaType.JSON, roles=["metadata"],
        ))  # fmt: skip
    own = collection_href(collection)
    result.clear_links()
    result.add_link(relative_link(pystac.RelType.ROOT, CATALOG, own))
    result.add_link(relative_link(pystac.RelType.PARENT, CATALOG, own))
    if license_url:
        result.add_link(pystac.Link(pystac.RelType.LICENSE, license_url, title="License"))
    for href in hrefs:
        result.add_link(relative_link(pystac.RelType.ITEM, href, own))
    return result


def catalog_for(collections: Sequence[str]) -> pystac.Catalog:
    """The root catalog, its Collections as children: each product's region months first."""
    catalog = pystac.Catalog(
        id="etm",
        title="ET model outputs",
        description=(
            "Monthly (and yearly) Cloud-Optimized GeoTIFFs of the gridded evapotranspiration "
            "model's water balance products, in mm. One Collection per product and kind, "
            "never mixed in one load: <product>-monthly (the whole region's months, what "
            "most users want), <product>-yearly (its years), <product>-tiles-monthly and "
            "<product>-tiles-yearly (per 10-degree tile). Each Collection's Items are also "
            f"in its folder's {INDEXES[0]} (one a line) and {INDEXES[1]} (GeoParquet), to "
            "query them in one request."
        ),
    )
    catalog.clear_links()
    catalog.add_link(relative_link(pystac.RelType.ROOT, CATALOG, CATALOG))
    for collection in collections:
        catalog.add_link(relative_link(pystac.RelType.CHILD, collection_href(collection), CATALOG))
    return catalog


def indexed(item: dict, href: str, base: str) -> dict:
    """An Item as its Collection's index holds it, loadable as it is: every href absolute
    under ``base`` (:func:`etm.plan.index_base`), and a ``self`` link.

    Parameters
    ----------
    item : dict
        The Item as published, its hrefs relative to it.
    href : str
        Where the Item is, relative to the output prefix.
    base : str
        Where readers find the output prefix.
    """
    folder = posixpath.dirname(href)

    def absolute(target: str) -> str:
        if "://" in target:
            return target
        return f"{base}/{posixpath.normpath(posixpath.join(folder, target))}"

    line = dict(item)
    line["links"] = [
        {"rel": pystac.RelType.SELF, "href": f"{base}/{href}", "type": pystac.MediaType.JSON},
        *({**link, "href": absolute(link["href"])} for link in item["links"]),
    ]
    line["assets"] = {
        key: {**asset, "href": absolute(asset["href"])} for key, asset in item["assets"].items()
    }
    return line


def period_list(items: Sequence[tuple[str, dict]], folder: str) -> dict:
    """A region Collection's :data:`etm.plan.PERIODS`, in time order: each period
    (``YYYY-MM`` or ``YYYY``), its COG's href relative to the list (in the Collection's
    ``folder``, so that the page reads it wherever the prefix is served) and its smallest
    and largest value.

    Parameters
    ----------
    items : sequence of (str, dict)
        Each Item's href relative to the output prefix, and the Item as published.
    folder : str
        The Collection's folder, relative to the output prefix.
    """
    periods = []
    for href, item in sorted(items, key=lambda pair: pair[1]["properties"]["start_datetime"]):
        month = item["properties"]["etm:period"] == "month"
        asset = item["assets"][ASSET["month" if month else "year"]]
        cog = posixpath.normpath(posixpath.join(posixpath.dirname(href), asset["href"]))
        statistics = asset["raster:bands"][0]["statistics"]
        periods.append({
            "period": item["properties"]["start_datetime"][: 7 if month else 4],
            "cog": posixpath.relpath(cog, folder), "minimum": statistics["minimum"],
            "maximum": statistics["maximum"],
        })  # fmt: skip
    return {"periods": periods}


def _kept_lines(texts: dict[str, str], etags: dict[str, str] | None = None) -> bytes:
    """Items' texts by href, and the ETags they were read with, as JSON lines (how the
    work area keeps them)."""
    etags = etags or {}
    return "".join(
        json.dumps({"href": href, "text": text, "etag": etags.get(href)}) + "\n"
        for href, text in texts.items()
    ).encode()


def _kept_texts(data: bytes | None) -> dict[str, tuple[str, str | None]]:
    """What :func:`_kept_lines` wrote: (text, ETag) by href. A line that is not theirs is
    left out: its Item is read from where it is published."""
    kept = {}
    for line in (data or b"").splitlines():
        try:
            entry = json.loads(line)
            href, text, etag = entry["href"], entry["text"], entry.get("etag")
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            continue
        if isinstance(href, str) and isinstance(text, str) and isinstance(etag, str | None):
            kept[href] = (text, etag)
    return kept


def is_published(text: str, etag: str | None, kept_etag: str | None) -> bool:
    """Whether a kept text is the published Item's, whose ETag is now ``etag``: it was kept
    with that ETag, or that ETag is its MD5 (an object of one PUT, not encrypted with
    SSE-KMS, whose ETags are not MD5s)."""
    if etag is None:
        return False
    return (
        etag == kept_etag or hashlib.md5(text.encode(), usedforsecurity=False).hexdigest() == etag
    )


def keep_items(path: str, texts: dict[str, str]) -> None:
    """Keep a region period's Items' texts (by href) in one object of the work area, where
    the catalog reads them in one GET; if it cannot, the catalog reads each Item itself.

    Parameters
    ----------
    path : str
        ``bucket/key`` (:meth:`etm.plan.Publication.kept_items`).
    texts : dict
        Each Item's text as published, by its path relative to the output prefix.
    """
    from etm import s3  # boto3: region jobs on S3 only

    try:
        s3.write(path, _kept_lines(texts))
    except StorageError as error:
        log.warning("%s; the catalog will read these %d Items one by one", error, len(texts))


def item_texts(
    item_files: Sequence[str],
    hrefs: Sequence[str],
    *,
    on_s3: str | None,
    kept: str | None,
    kept_by_region: Sequence[str] | None,
) -> list[str]:
    """Each published Item's JSON text, in the order of ``hrefs``.

    Locally, read from ``item_files``. On S3 (``on_s3``: the output prefix, ``bucket/key``),
    from one listing of the prefix: an Item is read again only if no text the work area
    keeps (``kept``, :data:`etm.plan.KEPT_ITEMS`) is the published one (:func:`is_published`,
    from the listed ETag). The texts are looked for first in those the last catalog kept
    (``<kept>.ndjson``), then in those its region period's job kept (``kept_by_region``,
    one object per region period, listed once); the others are read with one GET each, 16
    at a time. Then all are kept for the next catalog, from whichever machine it runs.
    """
    if not on_s3:
        texts = []
        for path in item_files:
            with open(path) as stream:
                texts.append(stream.read())
        return texts
    from etm import s3  # boto3: the catalog on S3 only

    shared = s3.client()  # for every request: making a client per thread is not safe
    etags = {o.path: o.etag for o in s3.S3Listing(shared).walk(on_s3)}
    paths = [f"{on_s3.rstrip('/')}/{href}" for href in hrefs]

    def current(index: int, known: dict[str, tuple[str, str | None]]) -> str | None:
        """The known text of an Item, if it is the published one."""
        text, kept_etag = known.get(hrefs[index], ("", None))
        return text if text and is_published(text, etags.get(paths[index]), kept_etag) else None

    def read_all(objects: Sequence[str]) -> list[bytes]:
        with ThreadPoolExecutor(16) as pool:
            return list(pool.map(lambda path: s3.read(path, using=shared), objects))

    before = _kept_texts(s3.read(f"{kept}.ndjson", missing_ok=True, using=shared))
    texts = [current(i, before) for i in range(len(hrefs))]
    from_catalog = sum(text is not None for text in texts)
    kept_objects = {o.path for o in s3.S3Listing(shared).walk(kept)}
    wanted = sorted({kept_by_region[i] for i, t in enumerate(texts) if t is None} & kept_objects)
    by_region = {}
    for data in read_all(wanted):
        by_region.update(_kept_texts(data))
    texts = [text or current(i, by_region) for i, text in enumerate(texts)]
    alone = [i for i, text in enumerate(texts) if text is None]
    for i, data in zip(alone, read_all([paths[i] for i in alone]), strict=True):
        texts[i] = data.decode()
    log.info(
        "%d Items: %d kept by the last catalog, %d by region jobs (objects read: %d), %d read "
        "one by one",
        len(texts), from_catalog, len(texts) - from_catalog - len(alone), len(wanted), len(alone),
    )  # fmt: skip
    read_with = {href: etags.get(path) for href, path in zip(hrefs, paths, strict=True)}
    s3.write(f"{kept}.ndjson", _kept_lines(dict(zip(hrefs, texts, strict=True)), read_with))
    return texts


def write_geoparquet(items: Sequence[dict], path: str) -> None:
    """Write Items as GeoParquet with stac-geoparquet, whole or not at all."""
    import stac_geoparquet.arrow  # pyarrow: the catalog's job only

    with whole(path) as partial:
        stac_geoparquet.arrow.to_parquet(
            stac_geoparquet.arrow.parse_stac_items_to_arrow(items), partial
        )


def write_catalog(
    item_files: Sequence[str],
    *,
    hrefs: Sequence[str],
    on_s3: str | None,
    kept: str | None,
    kept_by_region: Sequence[str] | None,
    collections: Sequence[str],
    license: str,
    license_url: str | None,
    base: str,
    catalog: str,
    collection_files: Sequence[str],
    index_files: Sequence[str],
) -> None:
    """Write the root catalog, the Collections and their indexes from the published Items.

    Parameters
    ----------
    item_files : sequence of str
        Local paths of the published Items (not retrieved on S3).
    hrefs : sequence of str
        Each Item's path relative to the output prefix, in the order of ``item_files``.
    on_s3, kept, kept_by_region
        As in :func:`item_texts`.
    collections : sequence of str
        Every Collection with at least one Item, in the catalog's order.
    license : str
        SPDX identifier, or ``other``.
    license_url : str or None
        Where the license text is.
    base : str
        Where readers of the indexes find the output prefix (:func:`etm.plan.index_base`).
    catalog : str
        Local path of ``catalog.json``.
    collection_files : sequence of str
        Local paths of the Collections' ``collection.json``, in the order of ``collections``.
    index_files : sequence of str
        Local paths of the Collections' indexes (:func:`etm.plan.index_hrefs`), each
        Collection's in turn.
    """
    by_collection: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    texts = item_texts(item_files, hrefs, on_s3=on_s3, kept=kept, kept_by_region=kept_by_region)
    for href, text in zip(hrefs, texts, strict=True):
        item = json.loads(text)
        by_collection[item["collection"]].append((href, item))
    indexes = iter(index_files)
    for collection, path in zip(collections, collection_files, strict=True):
        members, dicts = zip(*by_collection[collection], strict=True)
        found = collection_for(collection, dicts, members, license=license, license_url=license_url)
        write(found, path)
        lines = [indexed(item, href, base) for href, item in zip(members, dicts, strict=True)]
        write_whole(
            "".join(json.dumps(line, allow_nan=False) + "\n" for line in lines), next(indexes)
        )
        write_geoparquet(lines, next(indexes))
        if not collection_kind(collection).startswith("tiles"):
            items = zip(members, dicts, strict=True)
            text = json.dumps(period_list(list(items), collection), allow_nan=False)
            write_whole(text, next(indexes))
        log.info("wrote collection %s and its indexes: %d items", path, len(members))
    write(catalog_for(collections), catalog)
    log.info("wrote catalog %s of %d items", catalog, len(texts))
