"""Rerun the model for one missing chip and year (rule rerun_chip); write its marker."""

from etm.joblog import run_job
from etm.rerun import run_model

if __name__ == "__main__":
    run_job(
        snakemake.log[0],
        run_model,
        command=snakemake.params.command,
        marker=snakemake.output.marker,
        **snakemake.wildcards,
    )
