"""Write the STAC catalog and Collections from every published Item (rule stac_catalog)."""

from etm.joblog import run_job
from etm.stac import write_catalog

if __name__ == "__main__":
    run_job(
        snakemake.log[0],
        write_catalog,
        items=list(zip(snakemake.params.hrefs, snakemake.input.stac_items, strict=True)),
        products=snakemake.params.products,
        license=snakemake.params.license,
        catalog=snakemake.output.catalog,
        collections=list(snakemake.output.collections),
    )
