"""Publish the map page beside the catalog (rule map_page)."""

from etm.joblog import run_job
from etm.web import write_page

if __name__ == "__main__":
    run_job(
        snakemake.log[0],
        write_page,
        sources=list(snakemake.input.page),
        destinations=list(snakemake.output.page),
    )
