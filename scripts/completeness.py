"""Draw the completeness heatmaps and the CSV lists from the verification (rule completeness)."""

import os

from etm.joblog import run_job
from etm.report import render

if __name__ == "__main__":
    run_job(
        snakemake.log[0],
        render,
        snapshot_path=snakemake.input[0],
        folder=os.path.dirname(snakemake.input[0]),
    )
