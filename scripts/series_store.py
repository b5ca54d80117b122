"""Bring a product's series store up to date with its published COGs (rule series_store)."""

from etm.joblog import run_job
from etm.series import write_from_inputs

if __name__ == "__main__":
    run_job(
        snakemake.log[0],
        write_from_inputs,
        **snakemake.params.store,
        product=snakemake.wildcards.product,
        record=snakemake.output.record,
    )
