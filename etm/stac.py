"""A static STAC catalog of the published COGs, written with pystac and rio-stac.

Layout under the output prefix; every link is relative, so the catalog works wherever the
prefix is served from or copied to:

    catalog.json                                  root catalog, one child per product
    <product>/collection.json                     one Collection per product
    tiles/<tile>/<product>/<YYYY>/<name>.json     an Item beside each tile COG
    mosaic/<product>/<YYYY>/<name>.json           an Item beside each region COG
"""

from __future__ import annotations

import calendar
import json
import logging
import math
import os
import posixpath
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import pystac
import rasterio
from rio_stac import create_stac_item

from etm.cog import partial_path
from etm.plan import Period, collection_href
from etm.products import PRODUCTS

CATALOG = "catalog.json"
REGION = "region"

log = logging.getLogger(__name__)


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
        With ``start_datetime``/``end_datetime`` of its period, the proj and raster
        extensions (``nodata: "nan"``, ``unit: "mm"``, exact statistics), and its asset
        typed as a cloud-optimized GeoTIFF.
    """
    start, end = period_bounds(period)
    place = tile or REGION
    name = posixpath.basename(href).removesuffix(".json")
    item = create_stac_item(
        cog,
        id=f"{place}_{product}_{period}",
        input_datetime=start,
        collection=product,
        properties={"etm:tile": place, "etm:aggregation": aggregation or "month"},
        asset_name="data",
        asset_href=f"./{name}.tif",
        asset_roles=["data"],
        # rio-stac's automatic media type does not say cloud-optimized.
        asset_media_type=pystac.MediaType.COG,
        with_proj=True,
        with_raster=True,
    )
    item.datetime = None
    item.common_metadata.start_datetime = start
    item.common_metadata.end_datetime = end
    item.common_metadata.title = f"{PRODUCTS[product].title}, {place}, {period}"
    band = item.assets["data"].extra_fields["raster:bands"][0]
    band.pop("histogram", None)  # computed from a decimated read, and not asked for
    band.update(unit="mm", nodata="nan")
    statistics = _embedded_statistics(cog)
    if statistics:
        band["statistics"] = statistics
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
    item.add_link(relative_link(pystac.RelType.PARENT, collection_href(product), href))
    item.add_link(relative_link(pystac.RelType.COLLECTION, collection_href(product), href))
    return item


def write(stac_object: pystac.STACObject, path: str) -> None:
    """Write a STAC object as JSON with its own (relative) links, whole or not at all.

    Raises ValueError rather than write NaN or infinity, which are not JSON. Until then,
    it is a hidden file beside its destination, as a COG is.
    """
    partial = partial_path(path)
    document = stac_object.to_dict(include_self_link=False, transform_hrefs=False)
    try:
        with open(partial, "w") as stream:
            json.dump(document, stream, allow_nan=False)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def collection_for(
    product: str, items: Sequence[dict], hrefs: Sequence[str], *, license: str
) -> pystac.Collection:
    """One product's Collection: its extent the union of its Items', linking each of them.

    Parameters
    ----------
    product : str
    items : sequence of dict
        The product's Items as written.
    hrefs : sequence of str
        Where each Item is, relative to the output prefix.
    license : str
        SPDX identifier, or ``other``.
    """
    west, south, east, north = zip(*(item["bbox"] for item in items), strict=True)
    starts = [datetime.fromisoformat(i["properties"]["start_datetime"]) for i in items]
    ends = [datetime.fromisoformat(i["properties"]["end_datetime"]) for i in items]
    spec = PRODUCTS[product]
    collection = pystac.Collection(
        id=product,
        title=spec.title,
        description=(
            f"{spec.description} Unit: mm. Cloud-Optimized GeoTIFFs (float32, NaN where the "
            "model has no value) per 10-degree tile and for the whole region, monthly, and "
            "yearly where published."
        ),
        license=license,
        extent=pystac.Extent(
            pystac.SpatialExtent([[min(west), min(south), max(east), max(north)]]),
            pystac.TemporalExtent([[min(starts), max(ends)]]),
        ),
        summaries=pystac.Summaries(
            {"etm:tile": sorted({item["properties"]["etm:tile"] for item in items})}
        ),
    )
    own = collection_href(product)
    collection.clear_links()
    collection.add_link(relative_link(pystac.RelType.ROOT, CATALOG, own))
    collection.add_link(relative_link(pystac.RelType.PARENT, CATALOG, own))
    for href in hrefs:
        collection.add_link(relative_link(pystac.RelType.ITEM, href, own))
    return collection


def catalog_for(products: Sequence[str]) -> pystac.Catalog:
    """The root catalog, one child Collection per product."""
    catalog = pystac.Catalog(
        id="etm",
        title="ET model outputs",
        description=(
            "Monthly (and yearly) Cloud-Optimized GeoTIFFs of the gridded evapotranspiration "
            "model's water balance products, in mm."
        ),
    )
    catalog.clear_links()
    catalog.add_link(relative_link(pystac.RelType.ROOT, CATALOG, CATALOG))
    for product in products:
        catalog.add_link(relative_link(pystac.RelType.CHILD, collection_href(product), CATALOG))
    return catalog


def write_catalog(
    items: Sequence[tuple[str, str]],
    *,
    products: Sequence[str],
    license: str,
    catalog: str,
    collections: Sequence[str],
) -> None:
    """Write the root catalog and one Collection per product from the published Items.

    Parameters
    ----------
    items : sequence of (str, str)
        Each Item's path relative to the output prefix, and its local path.
    products : sequence of str
        Every product with at least one Item.
    license : str
        SPDX identifier, or ``other``.
    catalog : str
        Local path of ``catalog.json``.
    collections : sequence of str
        Local paths of the products' ``collection.json``, in the order of ``products``.
    """
    by_product: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for href, path in items:
        with open(path) as stream:
            item = json.load(stream)
        by_product[item["collection"]].append((href, item))
    for product, path in zip(products, collections, strict=True):
        hrefs, dicts = zip(*by_product[product], strict=True)
        write(collection_for(product, dicts, hrefs, license=license), path)
        log.info("wrote collection %s: %d items", path, len(hrefs))
    write(catalog_for(products), catalog)
    log.info("wrote catalog %s", catalog)
