"""Write the STAC catalog, Collections and index of every published Item (rule stac_catalog)."""

from etm.joblog import run_job
from etm.stac import write_catalog

if __name__ == "__main__":
    run_job(
        snakemake.log[0],
        write_catalog,
        items=list(zip(snakemake.params.hrefs, snakemake.input.stac_items, strict=True)),
        collections=snakemake.params.collections,
        license=snakemake.params.license,
        license_url=snakemake.params.license_url,
        catalog=snakemake.output.catalog,
        collection_files=list(snakemake.output.collections),
        index=snakemake.output.index,
    )
