"""One published period of one tile or of the region: its COG, STAC Item and quicklook."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from etm import quicklook, stac
from etm.cog import build_cog
from etm.errors import ChipError

log = logging.getLogger(__name__)


def publish(
    sources: Sequence[str],
    *,
    cog: str,
    item: str,
    item_href: str,
    product: str,
    tile: str | None,
    period: str,
    aggregation: str | None,
    combine: str,
    thumbnail: str | None = None,
    missing: Sequence[str] = (),
    **cog_options,
) -> None:
    """Build and publish a COG, then its quicklook (if asked) and its STAC Item.

    Parameters
    ----------
    sources : sequence of str
        Chips, monthly tile COGs (a tile's year) or tile COGs (the region).
    cog, item : str
        Local paths of the COG and its Item (Snakemake uploads them with S3 storage).
    item_href : str
        The Item's path relative to the output prefix, for its relative links.
    product, tile, period, aggregation
        What is published (see :func:`etm.stac.item_for`).
    combine : {"first", "sum", "mean"}
        How sources are combined (see :func:`etm.mosaic.write_levels`).
    thumbnail : str, optional
        Local path of a quicklook PNG to draw beside the COG.
    missing : sequence of str
        Chips of the period still missing after the model was rerun for them.
    **cog_options
        Passed to :func:`etm.cog.build_cog`.

    Raises
    ------
    ChipError
        If a chip is still missing after the model's rerun; nothing is published.
    """
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ChipError(
            missing[0],
            f"still missing after the model was rerun for it{more}; see the rerun job's log "
            "under logs/rerun_chip/, then run again to rerun it",
        )
    build_cog(sources, cog, combine=combine, **cog_options)
    if thumbnail:
        quicklook.render(cog, thumbnail, product=product, period=period, aggregation=aggregation)
    stac_item = stac.item_for(
        cog,
        href=item_href,
        product=product,
        tile=tile,
        period=period,
        aggregation=aggregation,
        thumbnail=os.path.basename(thumbnail) if thumbnail else None,
    )
    stac.write(stac_item, item)
    log.info("wrote STAC item %s%s", item_href, " and its quicklook" if thumbnail else "")
