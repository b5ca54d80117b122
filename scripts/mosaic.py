"""Publish one tile or region period (rules mosaic_tile, mosaic_region): COG, Item, quicklook."""

from etm.joblog import run_job
from etm.publish import publish

if __name__ == "__main__":
    run_job(
        snakemake.log.job,
        publish,
        sources=list(snakemake.input.sources),
        cog=snakemake.output.cog,
        item=snakemake.output.item,
        thumbnail=snakemake.output.get("thumbnail"),
        baseline=snakemake.input.get("baseline") or None,
        findings=snakemake.log.get("findings"),
        threads=snakemake.threads,
        tmpdir=snakemake.resources.tmpdir,
        **snakemake.params.publish,
    )
