"""Record the model's reruns of a tile-year (checkpoint chips_rerun)."""

from etm.joblog import run_job
from etm.rerun import record_reruns

if __name__ == "__main__":
    run_job(
        snakemake.log[0],
        record_reruns,
        markers=list(snakemake.input.markers),
        record=snakemake.output.record,
    )
