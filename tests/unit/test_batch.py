"""Batch job names: valid, and one per job of a run."""

from etm.batch import job_name, what_runs

RUN = "0123456789abcdef" * 2


def test_jobs_submitted_alone_are_named_with_their_wildcards_and_groups_by_their_id():
    # Every tile's baseline job was named etm-<run>-chip_baseline-<hash>, the same for all.
    baselines = {job_name(RUN, what_runs("chip_baseline", [t])) for t in ("r50.0_tile5", "t6")}
    assert len(baselines) == 2
    assert min(baselines).startswith("etm-0123456789ab-chip_baseline_r50-0_tile5-")
    assert job_name(RUN, what_runs("tile_r50.0_tile6_2001-2002")).startswith(
        "etm-0123456789ab-tile_r50-0_tile6_2001-2002-"
    )
