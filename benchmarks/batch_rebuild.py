"""A rebuild of the team's archive on AWS Batch, without AWS: makespan, cores busy, API calls.

Two parts, each saying what it measures and what it models.

``run``: the real main process (`snakemake --profile profiles/aws`, the etm-batch executor)
against the Batch stand-in (tests/batchserver.py, 220 vCPUs of capacity) and moto's S3 on
loopback, over empty chip objects. A container does not run its command: it is STARTING for
a modelled start (30-60 s), then RUNNING for its jobs' modelled time (the rebuild
benchmark's CPU-s per tile-month, run `jobs_per_container` at once), then writes its jobs'
declared outputs as empty objects and exits 0. Measured: the makespan, the vCPUs the
containers hold over time, the Batch API calls per minute (the stand-in's request log), and
the main process's CPU and memory (/proc, and its rusage at its end). ``--scale`` divides
every modelled time (1, the default, runs in real time).

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
import heapq
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
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

#: CPU-s of one tile-month with the workflow at ZSTD 9 (README, "The rebuild": 2.34 CPU-s per
#: tile-month, 2026-12-01, 35a83b7; 67.4 CPU-h for the team's rebuild).
TILE_MONTH_S = 2.34
#: A region month holds 18 tile-months of pixels (the same table prices it so).
REGION_MONTH_S = 18 * TILE_MONTH_S
#: A tile's chip baseline (README: the two tiles' baselines took 0.5 CPU-s).
BASELINE_S = 0.25
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
        self.records[attempt.container] = record
        self.stops[attempt.container] = threading.Event()
        self.stops[attempt.container].wait(start / self.scale)
        return None

    def run(self, attempt) -> int:
        jobs, record = self.commands[attempt.container], self.records[attempt.container]
        record.running = self.now()
        seconds = [job_seconds(rule) for rule, _ in jobs]
        record.work = sum(seconds)
        if self.stops[attempt.container].wait(list_schedule(seconds, self.slots) / self.scale):
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
    for name in ("map.js", "map.css"):
        (folder / "web" / "dist").mkdir(exist_ok=True)
        (folder / "web" / "dist" / name).touch()
    git = ["git", "-c", "user.name=etm", "-c", "user.email=etm@localhost"]
    subprocess.run([*git, "init", "-q"], cwd=folder, check=True)
    subprocess.run([*git, "add", "."], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-qm", "checkout"], cwd=folder, check=True)
    (folder / "bench.yaml").write_text(yaml.safe_dump(settings))
    return folder


def put_chips(tiles: int, products: list[str], years: range) -> int:
    """Empty chip objects in moto's S3 (this process's), at the model's keys."""
    from moto.s3.models import s3_backends

    backend = s3_backends["123456789012"]["aws"]
    count = 0
    for tile, names in tile_chips(tiles).items():
        for chip in names:
            for year in years:
                for product in products:
                    for month in range(1, 13):
                        key = f"{RUN.removeprefix('ws-out/')}/run_{tile}/{tile}/{chip}/{year}/"
                        backend.put_object("ws-out", key + f"{product}_{year}{month:02d}.tif", b"")
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
    for bucket in ("ws-out", "ws-enduser", "ws-work"):
        server.client().create_bucket(Bucket=bucket)
    chips = put_chips(args.tiles, products, years)
    from moto.s3.models import s3_backends

    backend = s3_backends["123456789012"]["aws"]
    settings = {
        "products": products, "start_year": years.start, "end_year": years.stop - 1,
        "unmosaicked_inputs": [f"{RUN}/run_{t}/{t}/" for t in tile_names(args.tiles)],
        "enduser_cog_output": OUTPUT, "jobs_per_container": args.jobs_per_container,
    }  # fmt: skip
    folder = checkout(root / "checkout", settings)
    origin = time.monotonic()
    sleeper = Sleeper(
        args.scale, args.jobs_per_container, output_key(OUTPUT, local=False),
        lambda bucket, key: backend.put_object(bucket, key, b""), origin,
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
          f"--jobs {args.jobs}, --cores {args.cores}, time scale 1/{args.scale:g}", flush=True)  # fmt: skip
    origin = sleeper.origin = time.monotonic()
    with open(root / "main.log", "w") as log:
        process = subprocess.Popen(command, cwd=folder, env=environment, stdout=log, stderr=log)
        watch = Watch(process.pid, origin)
        _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - origin
    watch.done.set()
    stand_in.stop()
    server.stop()
    if status:
        sys.exit(f"snakemake failed ({status}): see {root / 'main.log'}")
    records = list(sleeper.records.values())
    report_run(args, records, stand_in, watch, usage, wall, origin)


def report_run(args, records, stand_in, watch, usage, wall, origin) -> None:
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
    busy = busy_over_time(
        [Record(r.rules, r.vcpus, 0, r.starting - first, 0, r.ended - first) for r in records], width, (max(r.ended for r in records) - first)
    )  # fmt: skip
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
    print(f"seconds between two SubmitJob calls within a burst (< 1 s): median "
          f"{statistics.median(burst):.3f}, {len(burst)} of {len(intervals)}")  # fmt: skip
    cpu = usage.ru_utime + usage.ru_stime
    peak = usage.ru_maxrss / 1024
    print(f"main process: {wall:.0f} s wall, {cpu:.1f} CPU-s ({cpu / len(records):.3f} per "
          f"container), peak RSS {peak:,.0f} MB")  # fmt: skip
    if watch.samples:
        start = next((s for s in watch.samples if s[0] >= first), watch.samples[0])
        running_cpu = watch.samples[-1][1] - start[1]
        running_wall = watch.samples[-1][0] - start[0]
        print(f"main process while containers ran: {running_cpu:.1f} CPU-s in {running_wall:.0f} s"
              f" ({running_cpu / max(running_wall, 1e-9):.2f} of a core), RSS "
              f"{start[2]:,.0f} to {max(s[2] for s in watch.samples):,.0f} MB")  # fmt: skip
    dump = {
        "records": [r.__dict__ | {"rules": dict(r.rules)} for r in records],
        "calls": [(t - origin, op) for t, op in stand_in.calls],
        "samples": watch.samples, "first_submit": first, "scale": scale,
    }  # fmt: skip
    path = REPO / "benchmarks" / "cache" / "batch-rebuild" / f"run-{args.jobs_per_container}.json"
    path.write_text(json.dumps(dump))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    one = sub.add_parser("run", help="the real main process against the stand-in")
    one.add_argument("--tiles", type=int, default=18)
    one.add_argument("--products", type=int, default=1)
    one.add_argument("--years", type=int, default=1)
    one.add_argument("--jobs-per-container", type=int, default=4)
    one.add_argument("--cores", type=int, default=220)
    one.add_argument("--jobs", type=int, default=60)
    one.add_argument("--scale", type=float, default=1.0)
    one.add_argument("snakemake", nargs="*", help="more snakemake arguments (after --)")
    args = parser.parse_args()
    if args.part == "run":
        run(args)


if __name__ == "__main__":
    main()
