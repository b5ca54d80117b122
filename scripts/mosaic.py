"""Mosaic one month's chips (rule mosaic_tile) or tile COGs (rule mosaic_region) into a COG."""

from etm.cog import build_cog
from etm.joblog import run_job

if __name__ == "__main__":
    run_job(
        snakemake.log[0],
        build_cog,
        sources=list(snakemake.input),
        destination=snakemake.output.cog,
        gdal_cache_mb=snakemake.params.gdal_cache_mb,
        threads=snakemake.threads,
        tmpdir=snakemake.resources.tmpdir,
        names=snakemake.params.names["sources"],
        destination_name=snakemake.params.names["destination"],
        **snakemake.params.cog,
    )
