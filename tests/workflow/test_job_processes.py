"""Jobs in their own processes, as on AWS Batch, and the container cap."""

from __future__ import annotations

from datetime import datetime
from itertools import accumulate, pairwise

import pytest
from rio_cogeo.cogeo import cog_validate

pytestmark = pytest.mark.slow  # end-to-end runs on S3 or several runs each (make test-fast)


def test_remote_style_jobs_find_their_chips_without_the_verifier(workspace):
    # Each job is a separate `snakemake --mode remote` process that parses the Snakefile
    # again; only the main process lists the archive and prints the verifier's summary.
    result = workspace.snakemake(
        "--executor", "cluster-generic", "--cluster-generic-submit-cmd", "bash",
        "--jobs", "4", "--seconds-between-status-checks", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert output.count("chip files expected") == 1
    assert workspace.published() == workspace.expected_cogs()
    for path in workspace.published():
        assert cog_validate(str(workspace.output / path), quiet=True)[0], path


def log_span(path) -> tuple[datetime, datetime]:
    stamps = [datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f") for line in open(path)]
    return stamps[0], stamps[-1]


def test_max_concurrent_containers_caps_jobs_in_flight(workspace):
    workspace.config["max_concurrent_containers"] = 1
    result = workspace.snakemake()  # two cores, but one container at a time
    assert result.returncode == 0, result.stderr
    logs = [
        *workspace.logs.glob("mosaic_*/**/*.log"),
        *workspace.logs.glob("chip_baseline/*.log"),
    ]
    spans = sorted(log_span(p) for p in logs)
    assert len(spans) == len(workspace.expected_cogs()) + 2
    assert all(end <= next_start for (_, end), (next_start, _) in pairwise(spans))


@pytest.mark.parametrize("cores, containers, expected", [(2, 60, 2), (8, 1, 1)])
def test_cores_and_containers_cap_a_remote_executor(workspace, cores, containers, expected):
    # Jobs submitted to the background, as a queue runs them; --jobs alone would allow 10.
    submitted = workspace.root / "submitted.log"
    submit = workspace.root / "submit.sh"
    submit.write_text(
        f'( echo "$(date +%s.%N) 1" >> {submitted}; bash "$1"; '
        f'echo "$(date +%s.%N) -1" >> {submitted} ) > /dev/null 2>&1 &\n'
    )
    workspace.config["max_concurrent_containers"] = containers
    workspace.config["mosaic_threads"] = 1  # each job counts one core against --cores
    result = workspace.snakemake(
        "--executor", "cluster-generic", "--cluster-generic-submit-cmd", f"bash {submit}",
        "--jobs", "10", "--cores", str(cores), "--seconds-between-status-checks", "1",
        # Each period its own job, as one may ask: the workflow's containers hold several.
        "--group-components", "tile_{tile}_{years}=1", "region_{product}_{year}=1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    events = sorted((float(t), int(step)) for t, step in map(str.split, submitted.open()))
    assert len(events) == 2 * (len(workspace.expected_cogs()) + 2)  # and 2 tile baselines
    # The cap is reached: a wrapper's end is written a moment after Snakemake saw its job
    # finish, so these spans may overlap the next job's by that moment...
    assert max(accumulate(step for _, step in events)) >= expected
    # ...and never exceeded: each job's own log lies within the time Snakemake counts it.
    logs = [
        *workspace.logs.glob("mosaic_*/**/*.log"),
        *workspace.logs.glob("chip_baseline/*.log"),
    ]
    spans = [log_span(p) for p in logs]
    ends_first = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    assert max(accumulate(step for _, step in ends_first)) <= expected
