"""Read the usual NaN share of a tile's chips (rule chip_baseline)."""

from etm.checks import write_baseline
from etm.joblog import run_job

if __name__ == "__main__":
    run_job(
        snakemake.log[0],
        write_baseline,
        baseline=snakemake.output.baseline,
        **snakemake.params.baseline,
    )
