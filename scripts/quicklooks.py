"""Draw the region's quicklooks, one colour scale per product and kind (rule quicklooks)."""

from etm.joblog import run_job
from etm.quicklook import render_all

if __name__ == "__main__":
    run_job(
        snakemake.log[0],
        render_all,
        pngs=list(snakemake.output.pngs),
        **snakemake.params.quicklooks,
    )
