"""A rebuild of the team's archive on AWS Batch, without AWS: makespan, cores busy, API calls.

Two parts, each saying what it measures and what it models.

``run``: the real main process (`snakemake --profile profiles/aws`, the etm-batch executor)
against the Batch stand-in (tests/batchserver.py, 220 vCPUs of capacity) and moto's S3 on
loopback, over empty chip objects. A container does not run its command: it is STARTING for
a modelled start (30-60 s), then RUNNING for its jobs' modelled time (the rebuild
benchmark's CPU-s per tile-month, run `jobs_per_container` at once), then writes its jobs'
declared outputs as empty objects and exits 0. Measured: the makespan, the vCPUs the
containers hold over time, the Batch API calls per minute (the stand-in's request log), and
the main process's CPU and memory (/proc, and its rusage at its end) and S3 requests.
``--scale`` divides every modelled time (1, the default, runs in real time). moto and the
stand-in answer from this benchmark's own process: on a loaded machine the main process
waits for them, so its CPU-seconds and request counts are the figures to carry over, its
wall times are this machine's.

``model``: a discrete-event model of the same, at the team's full scale, driven by the
containers of a dry run of the real workflow (what each holds, its vCPUs), with the main
process's measured costs from ``run`` (status checks every 5 s, seconds per submission).

Usage:
  .venv/bin/python benchmarks/batch_rebuild.py run [--tiles 18] [--products 1] [--years 1]
  .venv/bin/python benchmarks/batch_rebuild.py model [--tiles 18] [--years 20]
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import heapq
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from dry_run_1m import PRODUCTS, REPO, RUN, tile_chips, tile_names

sys.path.insert(0, str(REPO / "tests"))
from batchserver import BatchServer  # noqa: E402
from s3server import FAKE_CREDENTIALS, S3Server  # noqa: E402

from etm.config import output_key  # noqa: E402
from etm.web import CHUNKS, PAGE  # noqa: E402

#: CPU-s of one tile-month with the workflow at ZSTD 9 (README, "The rebuild": 2.34 CPU-s per
#: tile-month, 2026-12-01, 35a83b7; 67.4 CPU-h for the team's rebuild).
TILE_MONTH_S = 2.34
#: A region month holds 18 tile-months of pixels (the same table prices it so).
REGION_MONTH_S = 18 * TILE_MONTH_S
#: A tile's chip baseline (README: the two tiles' baselines took 0.5 CPU-s).
BASELINE_S = 0.25
#: What a job downloads before it runs: 25 chips of 961 x 961 float64 (7.4 MB), or 18 tile
#: COGs of a month (17.2 MB at ZSTD 9: the rebuild benchmark's 1.78 TB stored, less 2,880
#: region months of 308.7 MB, over 51,840 tile-months).
JOB_MB = {"mosaic_tile": 25 * 7.4, "mosaic_region": 18 * 17.2}
#: A container's start on AWS Batch, modelled (issue 32): placement, image, ECS task start.
START_S = (30.0, 60.0)
#: What the workflow needs of the repository (tests/workflow/test_aws_batch.py).
WORKFLOW = (".gitignore", "Snakefile", "rules", "scripts", "config", "envs", "profiles")
OUTPUT = "ws-enduser/USA/bench"
WORK = "s3://ws-work/etm"
JOB_ROLE = {"AccessKeyId": "ASIABENCH", "SecretAccessKey": "bench", "Token": "bench"}
BATCH = [
    "--etm-batch-region", "us-east-1",
    "--etm-batch-job-queue", "arn:aws:batch:us-east-1:123456789012:job-queue/etm",
    "--etm-batch-job-role", "arn:aws:iam::123456789012:role/etm-batch-job",
    "--etm-batch-image", "etm:bench", "--default-storage-prefix", WORK,
]  # fmt: skip
TARGET = re.compile(r"(mosaic_tile|mosaic_region|chip_baseline):([\w.=,-]+)")


def job_seconds(rule: str) -> float:
    """Modelled seconds of one job of a rule, on one core."""
    return {"mosaic_tile": TILE_MONTH_S, "mosaic_region": REGION_MONTH_S}.get(rule, BASELINE_S)


def list_schedule(seconds: list[float], slots: int) -> float:
    """When the last of these jobs ends, run ``slots`` at a time in the given order."""
    ends = [0.0] * max(1, slots)
    for duration in seconds:
        heapq.heappush(ends, heapq.heappop(ends) + duration)
    return max(ends)


def outputs(rule: str, wildcards: dict[str, str], key: str) -> list[tuple[str, str]]:
    """(bucket, key) of a job's declared outputs (rules/mosaic.smk)."""
    prefix = OUTPUT.removeprefix("ws-enduser/")
    if rule == "chip_baseline":
        return [("ws-work", f"etm/logs/{key}/baselines/{wildcards['tile']}.json")]
    w = wildcards
    if rule == "mosaic_tile":
        name = f"{prefix}/tiles/{w['tile']}/{w['product']}/{w['year']}/{w['product']}_{w['period']}"
        return [("ws-enduser", f"{name}.{suffix}") for suffix in ("tif", "json")]
    name = f"{prefix}/mosaic/{w['product']}/{w['year']}/{w['product']}_{w['period']}"
    return [("ws-enduser", f"{name}.{suffix}") for suffix in ("tif", "json", "png")]


@dataclass
class Record:
    """One container as the stand-in ran it, in seconds since the run's start."""

    rules: Counter
    vcpus: int
    submitted: float
    starting: float = 0.0
    running: float = 0.0
    ended: float = 0.0
    #: Modelled core-seconds of its jobs.
    work: float = 0.0


@dataclass
class Sleeper:
    """Containers that sleep their modelled time (divided by ``scale``) and write their
    jobs' declared outputs as empty objects: the stand-in's runtime (create, run, ...)."""

    scale: float
    slots: int
    key: str
    put: object
    origin: float
    seed: int = 1
    #: Modelled seconds of a container's own Snakemake before its jobs.
    overhead: float = 10.0
    #: How many containers of each rule also run their command with --dry-run.
    probes: int = 0
    probed: list = field(default_factory=list)
    probing: Counter = field(default_factory=Counter)
    raw: dict = field(default_factory=dict)
    commands: dict = field(default_factory=dict)
    records: dict = field(default_factory=dict)
    stops: dict = field(default_factory=dict)

    def __post_init__(self):
        self.random = random.Random(self.seed)
        self.lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self.origin

    def create(self, attempt, image: str, command: list[str]) -> str | None:
        jobs = [(rule, dict(p.split("=", 1) for p in text.split(",")))
                for rule, text in TARGET.findall(" ".join(command))]  # fmt: skip
        vcpus = int(attempt.args[attempt.args.index("--cpus") + 1])
        with self.lock:
            start = self.random.uniform(*START_S)
        record = Record(Counter(rule for rule, _ in jobs), vcpus, 0.0, self.now())
        self.commands[attempt.container] = jobs
        self.raw[attempt.container] = command
        self.records[attempt.container] = record
        self.stops[attempt.container] = threading.Event()
        self.stops[attempt.container].wait(start / self.scale)
        return None

    def probe(self, attempt, command: list[str]) -> None:
        """The container's own Snakemake as far as its jobs (--dry-run appended): deploying
        the sources, parsing the workflow, the group's DAG and its inputs' checks on S3."""
        environment = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            process = subprocess.Popen(
                [*command[:-1], command[-1] + " --dry-run"], cwd=folder,
                env={**environment, **attempt.environment}, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
            output = process.stdout.read().decode()
            _pid, status, usage = os.wait4(process.pid, 0)
        wall, cpu = time.perf_counter() - start, usage.ru_utime + usage.ru_stime
        self.probed.append((max(self.records[attempt.container].rules), wall, cpu, status))
        if status:
            print(f"probe failed ({status}):\n{output[-2000:]}", file=sys.stderr)

    def run(self, attempt) -> int:
        jobs, record = self.commands[attempt.container], self.records[attempt.container]
        record.running = self.now()
        kind = max(record.rules)
        with self.lock:
            probe = sum(kind == k for k, *_ in self.probed) + self.probing[kind] < self.probes
            self.probing[kind] += probe
        spent = time.perf_counter()
        if probe:
            self.probe(attempt, self.raw[attempt.container])
        spent = time.perf_counter() - spent
        seconds = [job_seconds(rule) for rule, _ in jobs]
        record.work = sum(seconds)
        modelled = self.overhead + list_schedule(seconds, self.slots)
        if self.stops[attempt.container].wait(max(0.0, modelled / self.scale - spent)):
            return 143
        for rule, wildcards in jobs:
            for bucket, key in outputs(rule, wildcards, self.key):
                self.put(bucket, key)
        record.ended = self.now()
        return 0

    def stop(self, attempt, seconds: int) -> None:
        self.stops[attempt.container].set()

    kill = stop

    def remove(self, attempt) -> None:
        pass

    def out_of_memory(self, attempt) -> bool:
        return False


@dataclass
class Capacity(BatchServer):
    """The stand-in with a compute environment of ``vcpus`` vCPUs (not ``slots`` containers),
    each request's time and operation kept in ``calls``."""

    vcpus: int = 220
    calls: list = field(default_factory=list)

    def __post_init__(self):
        self.slots = 10**6
        self.in_use = 0
        super().__post_init__()

    def answer(self, method, path, body):
        self.calls.append((time.monotonic(), path.rstrip("/").rsplit("/", 1)[-1]))
        return super().answer(method, path, body)

    def _dispatch(self) -> None:
        for job in list(self._runnable):
            vcpus = int(job.resources["VCPU"])
            if self.in_use + vcpus > self.vcpus:
                continue
            self.in_use += vcpus
            self._runnable.remove(job)
            self._running += 1
            self._set(job, "STARTING")
            attempt = self._attempt(job)
            job.attempts.append(attempt)
            threading.Thread(target=self._run, args=(job, attempt), daemon=True).start()

    def _end(self, job, attempt, reason, status_reason, exit_code=None) -> None:
        self.in_use -= int(job.resources["VCPU"])
        super()._end(job, attempt, reason, status_reason, exit_code)


def checkout(folder: Path, settings: dict) -> Path:
    """A git checkout of the workflow with the config inside it, as the team runs it."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name in WORKFLOW:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / name)
    shutil.copytree(REPO / "web", folder / "web", ignore=shutil.ignore_patterns("node_modules"))
    # The map page's built files (make web): only its rule reads them, never run here.
    for path in (*PAGE.values(), f"dist/{CHUNKS}/chunk.js"):
        (folder / "web" / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / "web" / path).touch(exist_ok=True)
    git = ["git", "-c", "user.name=etm", "-c", "user.email=etm@localhost"]
    subprocess.run([*git, "init", "-q"], cwd=folder, check=True)
    subprocess.run([*git, "add", "."], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-qm", "checkout"], cwd=folder, check=True)
    (folder / "bench.yaml").write_text(yaml.safe_dump(settings))
    return folder


def chip_bucket(index: int) -> str:
    """The bucket of the index-th tile's chips: one bucket per tile, because moto scans and
    sorts its bucket's every key for each listing page (a full-scale archive in one bucket
    would take hours to list); etm lists each tile's prefix alike in one bucket or many."""
    return f"ws-out-{index:02d}"


def tile_prefixes(tiles: int) -> list[str]:
    """The tiles' input prefixes (unmosaicked_inputs), each in its own bucket."""
    run = RUN.removeprefix("ws-out/")
    return [f"{chip_bucket(n)}/{run}/run_{t}/{t}/" for n, t in enumerate(tile_names(tiles))]


def put_chips(tiles: int, products: list[str], years: range) -> int:
    """Empty chip objects in moto's S3 (this process's), at the model's keys."""
    from moto.s3.models import s3_backends

    backend = s3_backends["123456789012"]["aws"]
    count = 0
    for prefix, names in zip(tile_prefixes(tiles), tile_chips(tiles).values(), strict=True):
        bucket, key = prefix.split("/", 1)
        for chip in names:
            for year in years:
                for product in products:
                    for month in range(1, 13):
                        name = f"{key}{chip}/{year}/{product}_{year}{month:02d}.tif"
                        backend.put_object(bucket, name, b"")
                        count += 1
    return count


class Watch:
    """CPU-s and resident memory of a process (and its children), sampled every second."""

    def __init__(self, pid: int, origin: float):
        self.pid, self.origin, self.samples = pid, origin, []
        self.done = threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self.done.wait(1.0):
            try:
                fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
                status = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return
            if "VmRSS" not in status:  # ended, not yet waited for
                return
            cpu = sum(int(v) for v in fields[11:15]) / self.tick  # utime stime cutime cstime
            rss = int(re.search(r"VmRSS:\s+(\d+)", status)[1]) / 1024
            self.samples.append((time.monotonic() - self.origin, cpu, rss))


def per_minute(times: list[float], width: float) -> list[int]:
    """How many of these times fall in each ``width`` of seconds from 0."""
    counts = [0] * (int(max(times, default=0) // width) + 1)
    for moment in times:
        counts[int(moment // width)] += 1
    return counts


def busy_over_time(records: list[Record], width: float, makespan: float) -> list[float]:
    """Mean vCPUs held by containers (STARTING or RUNNING) in each ``width`` of seconds."""
    bins = [0.0] * (int(makespan // width) + 1)
    for r in records:
        start, end = r.starting, r.ended
        for index in range(int(start // width), int(end // width) + 1):
            low, high = max(start, index * width), min(end, (index + 1) * width)
            if high > low and index < len(bins):
                bins[index] += r.vcpus * (high - low) / width
    return bins


def run(args) -> None:
    """The real main process against the stand-in; containers sleep their modelled time."""
    root = REPO / "benchmarks" / "cache" / "batch-rebuild"
    products, years = PRODUCTS[: args.products], range(2001, 2001 + args.years)
    server = S3Server()
    for bucket in ("ws-enduser", "ws-work", *map(chip_bucket, range(args.tiles))):
        server.client().create_bucket(Bucket=bucket)
    chips = put_chips(args.tiles, products, years)
    from moto.s3.models import s3_backends

    backend = s3_backends["123456789012"]["aws"]
    settings = {
        "products": products, "start_year": years.start, "end_year": years.stop - 1,
        "unmosaicked_inputs": tile_prefixes(args.tiles),
        "enduser_cog_output": OUTPUT, "jobs_per_container": args.jobs_per_container,
        "years_per_container": args.years_per_container,
    }  # fmt: skip
    folder = checkout(root / "checkout", settings)
    origin = time.monotonic()
    sleeper = Sleeper(
        args.scale, args.jobs_per_container, output_key(OUTPUT, local=False),
        lambda bucket, key: backend.put_object(bucket, key, b""), origin, probes=args.probes,
        overhead=args.overhead,
    )  # fmt: skip
    stand_in = Capacity(
        None, {}, JOB_ROLE, FAKE_CREDENTIALS["AWS_DEFAULT_REGION"], root / "logs",
        vcpus=args.cores,
    )  # fmt: skip
    stand_in.runtime = sleeper
    (root / "logs").mkdir(exist_ok=True)
    environment = {
        **os.environ, **server.environment, "AWS_ENDPOINT_URL_BATCH": stand_in.endpoint,
    }  # fmt: skip
    command = [
        str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(folder / "Snakefile"),
        "--profile", str(folder / "profiles" / "aws"), *BATCH, "--cores", str(args.cores),
        "--jobs", str(args.jobs), "--configfile", "bench.yaml", "--until", "mosaic_region",
        *args.snakemake,
    ]  # fmt: skip
    print(f"layout: {chips:,} chips in moto ({args.tiles} tiles, {len(products)} products, "
          f"{args.years} years), jobs_per_container {args.jobs_per_container}, "
          f"--jobs {args.jobs}, --cores {args.cores}, time scale 1/{args.scale:g}",
          flush=True)  # fmt: skip
    origin = sleeper.origin = time.monotonic()
    with open(root / "main.log", "w") as log:
        process = subprocess.Popen(command, cwd=folder, env=environment, stdout=log, stderr=log)
        watch = Watch(process.pid, origin)
        _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - origin
    watch.done.set()
    requests = server.count()
    kinds = Counter(
        (method, re.sub(r"\d+", "N", path.rsplit("/", 1)[-1] if method != "GET" or not query
                        else "?" + query.split("&")[0]))
        for method, path, query in server.requests
    )  # fmt: skip
    stand_in.stop()
    server.stop()
    if status:
        sys.exit(f"snakemake failed ({status}): see {root / 'main.log'}")
    records = list(sleeper.records.values())
    report_run(args, records, stand_in, watch, usage, wall, origin, sleeper)
    jobs = sum(sum(r.rules.values()) for r in records)
    print(f"S3 requests of the main process (the containers write theirs into moto directly): "
          f"{dict(requests)}, {sum(requests.values()) / jobs:.2f} per job")  # fmt: skip
    print("  most asked: " + ", ".join(f"{m} {k} {n}" for (m, k), n in kinds.most_common(8)))


def report_run(args, records, stand_in, watch, usage, wall, origin, sleeper) -> None:
    scale = args.scale
    submitted = sorted(t - origin for t, op in stand_in.calls if op == "submitjob")
    first = min(submitted)
    makespan = (max(r.ended for r in records) - first) * scale
    work = sum(r.work for r in records)
    held = sum(r.vcpus * (r.ended - r.starting) for r in records) * scale
    kinds = Counter(max(r.rules, key=r.rules.get) for r in records)
    print(f"\ncontainers: {len(records)} ({', '.join(f'{n} {k}' for k, n in kinds.items())})")
    print(f"makespan (first SubmitJob to last container's end): {makespan / 60:.1f} min modelled")
    print(f"modelled work: {work / 3600:.2f} core-h; vCPU-h held by containers: {held / 3600:.2f};"
          f" {args.cores} vCPUs x makespan: {args.cores * makespan / 3600:.2f}")  # fmt: skip
    print(f"cores computing / {args.cores}: {work / (args.cores * makespan):.2f}; held / "
          f"{args.cores}: {held / (args.cores * makespan):.2f}")  # fmt: skip
    width = 60 / scale
    shifted = [Record(r.rules, r.vcpus, 0, r.starting - first, 0, r.ended - first) for r in records]
    busy = busy_over_time(shifted, width, max(r.ended for r in shifted))
    print("vCPUs held by containers, per modelled minute: " + " ".join(f"{b:.0f}" for b in busy))
    for operation in ("submitjob", "describejobs", "registerjobdefinition"):
        times = [t - origin - first for t, op in stand_in.calls if op == operation]
        counts = per_minute([t for t in times if t >= 0], width)
        print(f"{operation} per modelled minute: median {statistics.median(counts):.0f}, "
              f"max {max(counts)}, total {len(times)}")  # fmt: skip
    calls = Counter(op for _t, op in stand_in.calls)
    print(f"every Batch call: {dict(calls)}")
    intervals = [b - a for a, b in zip(submitted, submitted[1:], strict=False)]
    burst = [i for i in intervals if i < 1.0]
    if burst:
        print(f"seconds between two SubmitJob calls within a burst (< 1 s): median "
              f"{statistics.median(burst):.3f}, {len(burst)} of {len(intervals)}")  # fmt: skip
    cpu = usage.ru_utime + usage.ru_stime
    peak = usage.ru_maxrss / 1024
    jobs = sum(sum(r.rules.values()) for r in records)
    print(f"main process: {wall:.0f} s wall, {cpu:.1f} CPU-s ({cpu / len(records):.3f} per "
          f"container), peak RSS {peak:,.0f} MB")  # fmt: skip
    if watch.samples:
        start = next((s for s in watch.samples if s[0] >= first), watch.samples[0])
        running_cpu = watch.samples[-1][1] - start[1]
        running_wall = watch.samples[-1][0] - start[0]
        print(f"  before the first SubmitJob: {start[1]:.1f} CPU-s in {start[0]:.0f} s; after it, "
              f"{running_cpu / jobs:.3f} CPU-s per job ({jobs:,} jobs)")  # fmt: skip
        print(f"main process while containers ran: {running_cpu:.1f} CPU-s in {running_wall:.0f} s"
              f" ({running_cpu / max(running_wall, 1e-9):.2f} of a core), RSS "
              f"{start[2]:,.0f} to {max(s[2] for s in watch.samples):,.0f} MB")  # fmt: skip
    for kind in sorted({k for k, *_ in sleeper.probed}):
        found = [(w, c) for k, w, c, status in sleeper.probed if k == kind and status == 0]
        if found:
            walls, cpus = zip(*found, strict=True)
            print(f"a {kind} container's own Snakemake with --dry-run (deploy, parse, DAG, "
                  f"inputs on S3), {len(found)} containers: {statistics.median(walls):.1f} s "
                  f"wall, {statistics.median(cpus):.1f} CPU-s (median)")  # fmt: skip
    dump = {
        "records": [r.__dict__ | {"rules": dict(r.rules)} for r in records],
        "calls": [(t - origin, op) for t, op in stand_in.calls],
        "samples": watch.samples, "first_submit": first, "scale": scale,
    }  # fmt: skip
    path = REPO / "benchmarks" / "cache" / "batch-rebuild" / f"run-{args.jobs_per_container}.json"
    path.write_text(json.dumps(dump))


GROUP = re.compile(r"Group job (\S+) \(jobs in lexicogr\. order\)")
RULE = re.compile(r"^(    )?(?:local)?rule (\w+):")


@dataclass
class Container:
    """A container of the model: its jobs' seconds, the containers it waits for."""

    name: str
    kind: str
    seconds: list[float]
    after: list[int] = field(default_factory=list)
    vcpus: int = 1
    #: Megabytes each job downloads before it runs (its chips, or its tiles' COGs).
    megabytes: list[float] = field(default_factory=list)


def dag_containers(
    tiles: int, years: int, years_per_container: int, reuse: bool = False
) -> tuple[list[Container], str, float, float]:
    """The containers Snakemake forms as profiles/aws has it for the synthetic archive of
    benchmarks/dry_run_1m.py (empty local files), read from a dry run's job list; with the
    dry run's etm summary line, its wall seconds and peak resident MB. The executor is
    cluster-generic (etm-batch needs S3): Snakemake forms the same groups for any remote
    executor (benchmarks/batch_containers.py)."""
    from batch_containers import PROFILE
    from dry_run_1m import generate, layout_root

    root = layout_root(tiles, years)
    span = range(2001, 2001 + years)
    generate(root, tiles, span)
    config = {
        "products": PRODUCTS, "start_year": span.start, "end_year": span.stop - 1,
        "unmosaicked_inputs": [f"{RUN}/run_{t}/{t}/" for t in tile_names(tiles)],
        "enduser_cog_output": "ws-enduser/USA/bench/", "years_per_container": years_per_container,
    }  # fmt: skip
    (root / "batch.yaml").write_text(yaml.safe_dump(config))
    command = [
        str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(REPO / "Snakefile"),
        "-n", "--executor", "cluster-generic", "--cluster-generic-submit-cmd", "true",
        "--jobs", str(PROFILE["jobs"]), "--cores", str(PROFILE["cores"]),
        "--configfile", "batch.yaml",
    ]  # fmt: skip
    shape = " ".join([*command[4:], str(years_per_container)])
    shape = hashlib.sha256(shape.encode()).hexdigest()[:8]
    measured, listing = root / f"dry-run-{shape}.json", root / f"dry-run-{shape}.txt"
    if not (reuse and measured.exists()):
        start = time.perf_counter()
        with open(listing, "w") as output:
            process = subprocess.Popen(command, cwd=root, stdout=output, stderr=subprocess.STDOUT)
            _pid, status, usage = os.wait4(process.pid, 0)
        if status:
            sys.exit(f"the dry run failed: see {listing}")
        cpu = usage.ru_utime + usage.ru_stime
        measured.write_text(json.dumps([time.perf_counter() - start, cpu, usage.ru_maxrss / 1024]))
    wall, _cpu, rss = json.loads(measured.read_text())
    groups: dict[str, Counter] = defaultdict(Counter)
    alone: list[tuple[str, str]] = []
    group, summary = None, ""
    with open(listing) as output:
        for line in output:
            if found := GROUP.search(line):
                group = found[1]
            elif found := RULE.match(line):
                if found[1] and group:
                    groups[group][found[2]] += 1
                else:
                    group = None
                    alone.append((found[2], ""))
            elif line.startswith("    wildcards: ") and group is None and alone:
                alone[-1] = (alone[-1][0], line.split("tile=")[-1].strip())
            elif line.startswith("etm: ") and "containers to submit" in line:
                summary = line.strip()
    return _containers(groups, alone), summary, wall, rss


def _tile_group(name: str, tiles: list[str]) -> tuple[str, list[str]]:
    """Tile and years of a tile container's group (``tile_{tile}_{years}``, its years
    ``2001-2002`` or ``2001``: etm.plan.container)."""
    tile = max((t for t in tiles if name.startswith(f"tile_{t}_")), key=len)
    first, _, last = name.removeprefix(f"tile_{tile}_").partition("-")
    return tile, [str(year) for year in range(int(first), int(last or first) + 1)]


def _containers(groups: dict[str, Counter], alone: list[tuple[str, str]]) -> list[Container]:
    """Containers with their dependencies: a tile's after its baseline, a region's after its
    year's tiles."""
    found = [
        Container(f"baseline_{tile}", "baseline", [BASELINE_S], megabytes=[0.0])
        for rule, tile in alone if rule == "chip_baseline"
    ]  # fmt: skip
    baselines = {c.name.removeprefix("baseline_"): i for i, c in enumerate(found)}
    tiles_of: dict[str, list[int]] = defaultdict(list)
    for name, rules in groups.items():
        kind = "tile" if name.startswith("tile_") else "region"
        seconds = [job_seconds(rule) for rule, n in rules.items() for _ in range(n)]
        megabytes = [JOB_MB.get(rule, 0.0) for rule, n in rules.items() for _ in range(n)]
        found.append(Container(name, kind, seconds, megabytes=megabytes))
        if kind == "tile":
            tile, years = _tile_group(name, list(baselines))
            found[-1].after = [baselines[tile]]
            for year in years:
                tiles_of[year].append(len(found) - 1)
    for container in found:
        if container.kind == "region":
            container.after = tiles_of[container.name.rsplit("_", 1)[1]]
    return found


@dataclass
class Outcome:
    makespan: float
    busy: list[float]
    computing: float
    held: float
    submits: list[float]
    describes: list[float]


def simulate(containers: list[Container], slots: int, cores: int, nodes: int, order: str,
             submit_s: float, check_s: float, overhead_s: float, mbps: float = 0.0,
             seed: int = 1) -> Outcome:  # fmt: skip
    """The run as the main process drives it: a container is submitted once those it waits
    for are seen done, while fewer than ``nodes`` run and their vCPUs stay within ``cores``,
    one at a time (``submit_s`` of the main process each); region containers first, then
    the tiles' in DAG order (``order="dag"``) or shuffled (``"random"``). It starts after a
    modelled start, runs ``overhead_s`` (its own Snakemake) and its jobs ``slots`` at once,
    and is seen done at the next status check (every ``check_s``). With ``mbps``, each job
    first downloads its inputs at that many MB/s."""
    rng = random.Random(seed)
    for c in containers:
        c.vcpus = min(slots, len(c.seconds))
    rank = list(range(len(containers)))
    if order == "random":
        rng.shuffle(rank)
    waiting = [len(c.after) for c in containers]
    followers: dict[int, list[int]] = defaultdict(list)
    for index, c in enumerate(containers):
        for before in c.after:
            followers[before].append(index)
    ready: list[tuple[int, int]] = []  # (region first, rank), index

    def make_ready(index: int) -> None:
        first = 0 if containers[index].kind == "region" else 1
        heapq.heappush(ready, ((first, rank[index]), index))

    for index, count in enumerate(waiting):
        if count == 0:
            make_ready(index)
    ends: list[tuple[float, int]] = []  # (seen done, index)
    spans: list[tuple[float, float, int]] = []
    clock = free_at = 0.0
    running = used = 0
    computing = 0.0
    submits: list[float] = []
    done = 0
    while done < len(containers):
        # Submit what fits, one after the other.
        while ready and running < nodes and used + containers[ready[0][1]].vcpus <= cores:
            _, index = heapq.heappop(ready)
            c = containers[index]
            free_at = max(free_at, clock) + submit_s
            submits.append(free_at)
            running, used = running + 1, used + c.vcpus
            start = free_at + rng.uniform(*START_S)
            walls = [
                s + (mb / mbps if mbps else 0.0)
                for s, mb in zip(c.seconds, c.megabytes, strict=True)
            ]
            end = start + overhead_s + list_schedule(walls, c.vcpus)
            computing += sum(c.seconds)
            spans.append((free_at, end, c.vcpus))
            seen = math.ceil(end / check_s) * check_s
            heapq.heappush(ends, (seen, index))
        seen, index = heapq.heappop(ends)
        clock = max(seen, clock)
        batch = [index]
        while ends and ends[0][0] <= clock:
            batch.append(heapq.heappop(ends)[1])
        for index in batch:
            done += 1
            running, used = running - 1, used - containers[index].vcpus
            for follower in followers[index]:
                waiting[follower] -= 1
                if waiting[follower] == 0:
                    make_ready(follower)
    makespan = max(end for _s, end, _v in spans)
    width = 60.0
    busy = [0.0] * (int(makespan // width) + 1)
    held = 0.0
    for start, end, vcpus in spans:
        held += vcpus * (end - start)
        for b in range(int(start // width), int(end // width) + 1):
            low, high = max(start, b * width), min(end, (b + 1) * width)
            if high > low and b < len(busy):
                busy[b] += vcpus * (high - low) / width
    # DescribeJobs: 100 active containers a call at every status check.
    starts, ends_at = sorted(s for s, _e, _v in spans), sorted(e for _s, e, _v in spans)
    describes = []
    for tick in range(int(makespan // check_s) + 1):
        moment = tick * check_s
        active = bisect.bisect_right(starts, moment) - bisect.bisect_right(ends_at, moment)
        describes += [moment] * math.ceil(active / 100)
    return Outcome(makespan, busy, computing, held, submits, describes)


def model(args) -> None:
    """The model at full scale, for each jobs_per_container."""
    start = time.perf_counter()

    containers, summary, wall, rss = dag_containers(
        args.tiles, args.years, args.years_per_container, args.reuse
    )
    print(f"a tile's container holds {args.years_per_container} years")
    kinds = Counter(c.kind for c in containers)
    jobs = sum(len(c.seconds) for c in containers)
    print(f"dry run of the real workflow ({args.tiles} tiles, {len(PRODUCTS)} products, "
          f"{args.years} years): {wall:.0f} s, peak RSS {rss:,.0f} MB; {jobs:,} jobs in "
          f"{len(containers):,} containers "
          f"({', '.join(f'{n:,} {k}' for k, n in kinds.items())})")  # fmt: skip
    print(f"  {summary}")
    waits = Counter((c.kind, len(c.after)) for c in containers)
    print("  waiting for: " + ", ".join(
        f"{n:,} {kind} containers on {after}" for (kind, after), n in sorted(waits.items())
    ))  # fmt: skip
    work = sum(sum(c.seconds) for c in containers)
    print(f"modelled work: {work / 3600:.1f} core-h; floor on {args.cores} vCPUs: "
          f"{work / args.cores / 60:.1f} min")  # fmt: skip
    print(f"model: start {START_S[0]:.0f}-{START_S[1]:.0f} s, container Snakemake "
          f"{args.overhead:g} s, status checks every {args.check:g} s, "
          f"{args.submit:g} s of the main process per submission, downloads "
          f"{f'at {args.mbps:g} MB/s a job' if args.mbps else 'not modelled'}; median of "
          f"{args.seeds} seeds")  # fmt: skip
    print(f"\n{'per container':<14}{'--jobs':>7}{'order':>8}{'makespan min':>22}{'computing':>11}"
          f"{'held':>7}{'Submit/min':>12}{'Describe/min':>14}")  # fmt: skip
    for slots in args.jobs_per_container:
        for nodes in args.nodes:
            for order in ("dag", "random"):
                outcomes = [
                    simulate(containers, slots, args.cores, nodes, order, args.submit,
                             args.check, args.overhead, args.mbps, seed)
                    for seed in range(1, args.seeds + 1)
                ]  # fmt: skip
                spans = [o.makespan / 60 for o in outcomes]
                best = outcomes[0]
                capacity = args.cores * best.makespan
                submit_rate = per_minute(best.submits, 60)
                describe_rate = per_minute(best.describes, 60)
                print(f"{slots:>3} at once  {nodes:>7}{order:>8}"
                      f"{statistics.median(spans):>10.1f} ({min(spans):.1f}-{max(spans):.1f})"
                      f"{best.computing / capacity:>11.2f}{best.held / capacity:>7.2f}"
                      f"{statistics.median(submit_rate):>8.0f} max{max(submit_rate):<4}"
                      f"{statistics.median(describe_rate):>10.0f} max{max(describe_rate)}"
                      )  # fmt: skip
                if order == "dag" and args.busy:
                    print("    vCPUs held per minute: " + " ".join(f"{b:.0f}" for b in best.busy))
    print(f"\n({time.perf_counter() - start:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    one = sub.add_parser("run", help="the real main process against the stand-in")
    one.add_argument("--tiles", type=int, default=18)
    one.add_argument("--products", type=int, default=1)
    one.add_argument("--years", type=int, default=1)
    one.add_argument("--jobs-per-container", type=int, default=4)
    one.add_argument("--years-per-container", type=int, default=2)
    one.add_argument("--cores", type=int, default=220)
    one.add_argument("--jobs", type=int, default=60)
    one.add_argument("--scale", type=float, default=1.0)
    one.add_argument("--probes", type=int, default=3, help="containers of a rule run -n too")
    one.add_argument("--overhead", type=float, default=10.0, help="container Snakemake s")
    one.add_argument("snakemake", nargs="*", help="more snakemake arguments (after --)")
    full = sub.add_parser("model", help="the model at full scale, from a dry run's containers")
    full.add_argument("--tiles", type=int, default=18)
    full.add_argument("--years", type=int, default=20)
    full.add_argument("--cores", type=int, default=220)
    full.add_argument("--jobs-per-container", type=int, nargs="+", default=[1, 2, 4, 8])
    full.add_argument("--nodes", type=int, nargs="+", default=[60, 220], help="--jobs values")
    full.add_argument("--submit", type=float, default=0.05, help="main-process s per submission")
    full.add_argument("--check", type=float, default=5.0, help="s between status checks")
    full.add_argument("--overhead", type=float, default=10.0, help="container Snakemake s")
    full.add_argument("--seeds", type=int, default=3)
    full.add_argument("--busy", action="store_true", help="print vCPUs held per minute")
    full.add_argument("--reuse", action="store_true", help="the last dry run's job list")
    full.add_argument("--years-per-container", type=int, default=2, help="config's")
    full.add_argument("--mbps", type=float, default=0.0, help="S3 MB/s per job (0: none)")
    args = parser.parse_args()
    if args.part == "run":
        run(args)
    else:
        model(args)


if __name__ == "__main__":
    main()
