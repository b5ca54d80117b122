"""Write the STAC catalog, Collections and index of every published Item (rule stac_catalog)."""

from etm.joblog import run_job
from etm.stac import write_catalog

if __name__ == "__main__":
    run_job(
        snakemake.log[0],
        write_catalog,
        item_files=list(snakemake.input.stac_items),
        catalog=snakemake.output.catalog,
        collection_files=list(snakemake.output.collections),
        index_files=list(snakemake.output.indexes),
        **snakemake.params.catalog,
    )
