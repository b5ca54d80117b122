"""Batch job names: valid, and one per job of a run."""

from etm.batch import first_period, job_name, what_runs

RUN = "0123456789abcdef" * 2


def test_jobs_submitted_alone_are_named_with_their_wildcards_and_groups_by_their_id():
    # Every tile's baseline job was named etm-<run>-chip_baseline-<hash>, the same for all.
    baselines = {job_name(RUN, what_runs("chip_baseline", [t])) for t in ("r50.0_tile5", "t6")}
    assert len(baselines) == 2
    assert min(baselines).startswith("etm-0123456789ab-chip_baseline_r50-0_tile5-")
    assert job_name(RUN, what_runs("tile_r50.0_tile6_2001-2002")).startswith(
        "etm-0123456789ab-tile_r50-0_tile6_2001-2002-"
    )


def test_the_containers_of_a_split_group_are_named_apart():
    # tile_{tile}_{years}=2 from the command line: one group id, several containers.
    jobs = [{"product": p, "period": f"2001{m:02d}", "tile": "t6"} for p in ("etasw", "netet")
            for m in (1, 2)]  # fmt: skip
    parts = [first_period(jobs[:2]), first_period(jobs[2:]), first_period(jobs[1:2])]
    assert parts == [["200101", "etasw"], ["200101", "netet"], ["200102", "etasw"]]
    names = {job_name(RUN, what_runs("tile_t6_2001-2002", p)) for p in parts}
    assert len(names) == 3
    assert first_period([{"tile": "t6"}]) == []  # a baseline's: no period
