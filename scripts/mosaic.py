"""Publish one tile or region period (rules mosaic_tile, mosaic_region): COG, Item, quicklook."""

from etm.joblog import run_job
from etm.publish import publish

if __name__ == "__main__":
    run_job(
        snakemake.log[0],
        publish,
        sources=list(snakemake.input.sources),
        cog=snakemake.output.cog,
        item=snakemake.output.item,
        thumbnail=snakemake.output.get("thumbnail"),
        missing=snakemake.params.get("missing", []),
        combine=snakemake.params.combine,
        **snakemake.params.stac,
        gdal_cache_mb=snakemake.params.gdal_cache_mb,
        threads=snakemake.threads,
        tmpdir=snakemake.resources.tmpdir,
        names=snakemake.params.names["sources"],
        destination_name=snakemake.params.names["destination"],
        **snakemake.params.cog,
    )
