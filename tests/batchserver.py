"""A stand-in for the AWS Batch API on loopback, as strict as Batch: it runs each job in the image.

Every request is checked against botocore's model of the Batch API (``ParamValidator``, then
the ``max`` and ``enum`` constraints it leaves out) and against the rules the model does not
encode, each with its source; what Batch refuses is answered as Batch does (HTTP 400,
``ClientException``) and its message kept in ``refused``. What Batch would take but the
stand-in cannot serve (array, multi-node, EKS jobs, ...) is refused too, its message
starting with "the stand-in", so that no test passes on a call the stand-in ignored.

The queue (``queue``, an EC2 compute environment whose largest instance is an m5.2xlarge)
runs at most ``slots`` containers at once. Each job goes SUBMITTED, PENDING (while it has
dependencies), RUNNABLE, STARTING, RUNNING, then SUCCEEDED or FAILED, one attempt per
container, retried as its retry strategy says. A container is ``podman create`` (STARTING:
the image must be there, nothing is pulled) then ``podman start --attach`` (RUNNING) of the
job's command in its image, with host networking, the job definition's vCPUs and memory
enforced, its user, privileges and ulimits, and only its environment plus what Batch and the
ECS agent give a job with a job role: ``AWS_BATCH_JOB_ID`` and the like, its region, and the
address from which the AWS SDKs fetch the role's temporary credentials; one killed over its
memory ends as ECS says (137, ``OUT_OF_MEMORY``). Each attempt's output is kept under
``logs`` (CloudWatch's part). With ``podman=None`` a container is the command
run as a plain process (no image, no limits; the podman options it would have had are still
recorded), for fast tests of the API.

For tests, beyond the API: ``hold``/``release`` keep jobs RUNNABLE (no capacity, an INVALID
compute environment), ``reclaim`` ends a chosen attempt as a reclaimed Spot instance does,
``wait`` waits for a job's status. Nothing of the executor or of etm is replaced: only AWS.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import botocore.session
from botocore.validate import ParamValidator

#: Where containers fetch the job role's credentials (the ECS agent's address, on loopback).
ROLE_CREDENTIALS = "/v2/credentials/etm-batch-job"
#: The largest instance of the stand-in's compute environment (an m5.2xlarge, less what the
#: ECS agent keeps).
LARGEST_VCPUS, LARGEST_MEMORY_MIB = 8, 30_000
ACCOUNT = "123456789012"
MODEL = botocore.session.get_session().get_service_model("batch")

# jobName (SubmitJob) and jobDefinitionName (RegisterJobDefinition): letters, digits, "-" and
# "_", the first a letter or digit, at most 128: moto's JOB_NAME_REGEX (moto/batch/models.py),
# which also asks for 2 characters where the API reference allows 1.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# ContainerProperties.image: "It can be 255 characters long. It can contain uppercase and
# lowercase letters, numbers, hyphens (-), underscores (_), colons (:), periods (.), forward
# slashes (/), and number signs (#)" (API reference; "@" for the digests it documents too).
IMAGE = re.compile(r"[A-Za-z0-9_:./#@-]{1,255}")
# Service quotas (https://docs.aws.amazon.com/batch/latest/userguide/service_limits.html):
# "Maximum job definition size (for RegisterJobDefinition API operations) 24 KiB", "Maximum
# job payload size (for SubmitJob API operations) 30 KiB", "Maximum number of job dependencies
# for a job 20". How a size is counted is not documented: here, the request's JSON, compact,
# in UTF-8 bytes (the service answers "Job size must be less than 30 KiB, got 47 KiB").
DEFINITION_BYTES, JOB_BYTES, DEPENDENCIES = 24 * 1024, 30 * 1024, 20
# "Container Overrides length must be at most 8192": a job's statusReason when it fails for
# that (seen in ASFHyP3/hyp3 issue 3041); counted as the compact JSON's characters.
OVERRIDES_CHARACTERS = 8192
# Tag restrictions (https://docs.aws.amazon.com/batch/latest/userguide/tag-restrictions.html):
# at most 50 per resource, keys 1 to 128 and values up to 256 characters (also the model's),
# letters, numbers, spaces and + - = . _ : / @ (moto's validate_tags checks the same), and
# "aws:" in any case reserved as a prefix of keys and values.
TAGS, TAG_TEXT = 50, re.compile(r"[\w\s+\-=._:/@]*")
# EvaluateOnExit (API reference): onStatusReason and onReason "can contain letters, numbers,
# periods (.), colons (:), and white space", onExitCode "only numbers", each up to 512
# characters and optionally ending with "*"; RetryStrategy: 1 to 10 attempts, up to 5
# evaluateOnExit entries, which need attempts.
REASON_PATTERN, EXIT_CODE_PATTERN = re.compile(r"[A-Za-z0-9.:\s]*\*?"), re.compile(r"[0-9]*\*?")
# JobTimeout: "The minimum value for the timeout is 60 seconds."
MINIMUM_TIMEOUT = 60
# A job's statusReason, as jobs report it (Batch's job records quoted in public code and in
# Seqera's docs on Spot reclamations; "Task failed to start" as in the user guide's retry
# example). A RUNNABLE job's are "the same values you can define for the
# jobStateTimeLimitActions.statusReason parameter" (user guide, job_stuck_in_runnable...).
EXITED = "Essential container in task exited"
NOT_STARTED = "Task failed to start"
SPOT_LOST = "Host EC2 (instance i-0123456789abcdef0) terminated."
TIMED_OUT = "Job attempt duration exceeded timeout"
DEPENDENCY_FAILED = "Dependent Job failed"
# An ECS container killed for exceeding its memory: exit code 137 and this reason.
OUT_OF_MEMORY = "OutOfMemoryError: Container killed due to memory usage"
NO_CAPACITY = "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
TOO_BIG = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"
# ContainerProperties the stand-in runs; any other is refused as unsupported.
CONTAINER_PROPERTIES = {
    "image", "command", "environment", "jobRoleArn", "executionRoleArn", "resourceRequirements",
    "vcpus", "memory", "privileged", "user", "readonlyRootFilesystem", "ulimits",
}  # fmt: skip
UNSUPPORTED_JOB = {
    "arrayProperties", "nodeOverrides", "eksPropertiesOverride", "ecsPropertiesOverride",
    "consumableResourcePropertiesOverride",
}  # fmt: skip
CONTAINER_OVERRIDES = {"command", "environment", "resourceRequirements"}
TERMINAL = ("SUCCEEDED", "FAILED")


class Refused(Exception):
    """A request that Batch refuses (or that the stand-in cannot serve): HTTP 400."""


def _now() -> int:
    return int(time.time() * 1000)


def _size(body: dict) -> int:
    return len(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())


def _validate(operation: str, params: dict) -> None:
    """The request against botocore's model: what its validator checks (required members,
    types, minimums, unknown members), then the maximums and enums it leaves out."""
    shape = MODEL.operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise Refused(report.generate_report())
    problems = list(_constraints(params, shape, ""))
    if problems:
        raise Refused(f"{len(problems)} validation error(s) detected: " + "; ".join(problems))


def _constraints(value, shape, name: str):
    meta, kind = shape.metadata, shape.type_name
    if kind == "structure":
        for key, member in shape.members.items():
            if key in value:
                yield from _constraints(value[key], member, f"{name}.{key}".lstrip("."))
    elif kind in ("list", "map"):
        if len(value) > meta.get("max", math.inf):
            yield f"'{name}' must have at most {meta['max']} members"
        for index, item in enumerate(value):
            if kind == "list":
                yield from _constraints(item, shape.member, f"{name}[{index}]")
            else:
                yield from _constraints(item, shape.key, f"{name} key")
                yield from _constraints(value[item], shape.value, f"{name}.{item}")
    elif kind == "string":
        # EvaluateOnExit.action: "The values aren't case sensitive."
        text = value.upper() if shape.name == "RetryAction" else value
        if "enum" in meta and text not in meta["enum"]:
            yield f"Value '{value}' at '{name}' must satisfy enum value set: {meta['enum']}"
        if len(value) > meta.get("max", math.inf):
            yield f"Value at '{name}' must have length less than or equal to {meta['max']}"
    elif kind in ("integer", "long") and value > meta.get("max", math.inf):
        yield f"Value {value} at '{name}' must be less than or equal to {meta['max']}"


def _check_tags(tags: dict[str, str], where: str) -> None:
    if len(tags) > TAGS:
        raise Refused(f"{where}: {len(tags)} tags, at most {TAGS} per resource")
    for key, value in tags.items():
        for text in (key, value):
            if not TAG_TEXT.fullmatch(text):
                raise Refused(f"{where}: tag '{key}': a character outside {TAG_TEXT.pattern}")
            if text.lower().startswith("aws:"):
                raise Refused(f"{where}: tag '{key}': the prefix aws: is reserved for AWS use")


def _check_retry_strategy(strategy: dict | None) -> None:
    if strategy is None:
        return
    attempts, rules = strategy.get("attempts"), strategy.get("evaluateOnExit")
    if rules is not None and attempts is None:
        raise Refused("retryStrategy: evaluateOnExit needs attempts")
    if attempts is not None and not 1 <= attempts <= 10:
        raise Refused(f"retryStrategy: attempts {attempts}: between 1 and 10")
    if rules is not None and len(rules) > 5:
        raise Refused(f"retryStrategy: {len(rules)} evaluateOnExit entries, at most 5")
    for rule in rules or ():
        for key, pattern in (
            ("onStatusReason", REASON_PATTERN), ("onReason", REASON_PATTERN),
            ("onExitCode", EXIT_CODE_PATTERN),
        ):  # fmt: skip
            if key in rule and not (len(rule[key]) <= 512 and pattern.fullmatch(rule[key])):
                raise Refused(f"retryStrategy: {key} '{rule[key]}' is not a valid pattern")


def _check_timeout(timeout: dict | None) -> None:
    seconds = (timeout or {}).get("attemptDurationSeconds", MINIMUM_TIMEOUT)
    if seconds < MINIMUM_TIMEOUT:
        raise Refused(f"timeout: attemptDurationSeconds {seconds}: at least {MINIMUM_TIMEOUT}")


def _check_environment(environment: list[dict], where: str) -> None:
    # "Environment variables cannot start with "AWS_BATCH". This naming convention is
    # reserved for variables that Batch sets." (ContainerProperties, ContainerOverrides)
    for variable in environment:
        if variable.get("name", "").startswith("AWS_BATCH"):
            raise Refused(f"{where}: {variable['name']}: the prefix AWS_BATCH is reserved")


def _resources(properties: dict, where: str) -> dict[str, str]:
    """VCPU, MEMORY (and GPU) as an EC2 compute environment takes them: whole vCPUs, at least
    1, and at least 4 MiB (ResourceRequirement, ContainerProperties); in resourceRequirements
    or the deprecated vcpus and memory, not both."""
    resources = {r["type"]: r["value"] for r in properties.get("resourceRequirements", ())}
    for kind, deprecated in (("VCPU", "vcpus"), ("MEMORY", "memory")):
        if deprecated in properties:
            if kind in resources:
                raise Refused(f"{where}: {kind} in both resourceRequirements and {deprecated}")
            resources[kind] = str(properties[deprecated])
    vcpus, memory = resources.get("VCPU"), resources.get("MEMORY")
    if vcpus is None or memory is None:
        raise Refused(f"{where}: VCPU and MEMORY are required")
    if not (vcpus.isdigit() and int(vcpus) >= 1):
        raise Refused(f"{where}: vCPU value {vcpus}: whole vCPUs, at least 1, on EC2")
    if not (memory.isdigit() and int(memory) >= 4):
        raise Refused(f"{where}: memory {memory}: whole MiB, at least 4")
    if not resources.get("GPU", "0").isdigit():
        raise Refused(f"{where}: GPU value {resources['GPU']}: a whole number")
    return resources


def _matches(pattern: str | None, value: str | None) -> bool:
    """An EvaluateOnExit pattern: exact, or a prefix when it ends with "*"."""
    if pattern is None:
        return True
    if value is None:
        return False
    return value.startswith(pattern[:-1]) if pattern.endswith("*") else value == pattern


@dataclass
class Attempt:
    """One container of a job."""

    number: int
    container: str
    #: The podman options the container was given (vCPUs, memory, user, privileges, ...).
    args: list[str]
    #: The environment it was given.
    environment: dict[str, str]
    log: Path
    started_at: int | None = None
    stopped_at: int | None = None
    exit_code: int | None = None
    reason: str | None = None
    status_reason: str | None = None
    #: Why the stand-in stops it, if it does: "terminate", "timeout" or "spot".
    stop: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def describe(self, stream: str) -> dict:
        container = {"logStreamName": stream}
        if self.exit_code is not None:
            container["exitCode"] = self.exit_code
        if self.reason is not None:
            container["reason"] = self.reason
        answer = {"container": container}
        if self.started_at is not None:
            answer["startedAt"] = self.started_at
        if self.stopped_at is not None:
            answer.update(stoppedAt=self.stopped_at, statusReason=self.status_reason)
        return answer


@dataclass
class Job:
    id: str
    name: str
    arn: str
    queue: str
    definition: dict
    #: The container as the job runs it: the definition's properties with the overrides.
    properties: dict
    resources: dict[str, str]
    created_at: int
    retry_strategy: dict | None
    timeout: int | None
    depends_on: list[dict]
    tags: dict[str, str]
    propagate_tags: bool
    overrides: dict | None
    status: str = "SUBMITTED"
    #: Every status the job went through, in order.
    states: list[str] = field(default_factory=lambda: ["SUBMITTED"])
    status_reason: str | None = None
    started_at: int | None = None
    stopped_at: int | None = None
    attempts: list[Attempt] = field(default_factory=list)
    #: The reason given by CancelJob or TerminateJob, while the job has not yet stopped.
    stopping: str | None = None
    is_cancelled: bool = False
    is_terminated: bool = False

    @property
    def exit_code(self) -> int | None:
        return self.attempts[-1].exit_code if self.attempts else None

    @property
    def log(self) -> Path | None:
        return self.attempts[-1].log if self.attempts else None

    @property
    def task_tags(self) -> dict[str, str]:
        """The tags its ECS task gets: with propagateTags, the definition's and the job's,
        the job's first (SubmitJob)."""
        if not self.propagate_tags:
            return {}
        return {**self.definition.get("tags", {}), **self.tags}

    @property
    def stream(self) -> str:
        return f"{self.definition['jobDefinitionName']}/default/{self.id}"

    def summary(self) -> dict:
        answer = {
            "jobArn": self.arn, "jobId": self.id, "jobName": self.name,
            "createdAt": self.created_at, "status": self.status,
            "jobDefinition": self.definition["jobDefinitionArn"],
        }  # fmt: skip
        for key, value in (
            ("statusReason", self.status_reason), ("startedAt", self.started_at),
            ("stoppedAt", self.stopped_at),
        ):  # fmt: skip
            if value is not None:
                answer[key] = value
        if self.status in TERMINAL and self.attempts:
            last = self.attempts[-1]
            answer["container"] = {
                k: v for k, v in (("exitCode", last.exit_code), ("reason", last.reason))
                if v is not None
            }  # fmt: skip
        if self.is_cancelled:
            answer["isCancelled"] = True
        if self.is_terminated:
            answer["isTerminated"] = True
        return answer

    def describe(self) -> dict:
        container = {
            key: self.properties[key]
            for key in ("image", "command", "jobRoleArn", "environment", "resourceRequirements",
                        "privileged", "user", "readonlyRootFilesystem", "ulimits")
            if key in self.properties
        }  # fmt: skip
        container["logStreamName"] = self.stream
        container.update(self.summary().get("container", {}))
        answer = {
            **self.summary(), "jobQueue": self.queue, "container": container,
            "attempts": [attempt.describe(self.stream) for attempt in self.attempts],
            "dependsOn": self.depends_on, "propagateTags": self.propagate_tags,
            "platformCapabilities": self.definition["platformCapabilities"],
            "parameters": self.definition.get("parameters", {}),
        }  # fmt: skip
        if self.tags:
            answer["tags"] = self.tags
        if self.retry_strategy is not None:
            answer["retryStrategy"] = self.retry_strategy
        if self.timeout is not None:
            answer["timeout"] = {"attemptDurationSeconds": self.timeout}
        return answer


@dataclass
class Reclaim:
    """A Spot instance that EC2 will reclaim: the one running attempt ``attempt`` of the
    first job whose name matches ``name`` (a glob), ``after`` seconds into it."""

    name: str
    attempt: int
    after: float
    #: The job whose attempt it ended, once it has.
    job: Job | None = None


class Podman:
    """Containers: ``podman create`` (the image must be there) and ``podman start``."""

    def __init__(self, podman: list[str], environment: dict[str, str]):
        self.podman, self.environment = podman, environment
        self.ids: dict[str, str] = {}

    def _run(self, *args: str, **options) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.podman, *args], env=self.environment, text=True, capture_output=True,
            **options,
        )  # fmt: skip

    def create(self, attempt: Attempt, image: str, command: list[str]) -> str | None:
        """None, or why the container could not be created."""
        variables = (item for n, v in attempt.environment.items() for item in ("-e", f"{n}={v}"))
        created = self._run(
            "create", "--pull", "never", "--name", attempt.container, "--network", "host",
            *attempt.args, *variables, image, *command,
        )  # fmt: skip
        if created.returncode != 0:
            return created.stderr.strip()
        self.ids[attempt.container] = created.stdout.strip()
        return None

    def run(self, attempt: Attempt) -> int:
        # In a folder of its own: conmon leaves a file "oom" where it runs.
        with tempfile.TemporaryDirectory() as folder, open(attempt.log, "w") as log:
            started = subprocess.run(
                [*self.podman, "start", "--attach", attempt.container],
                stdout=log, stderr=subprocess.STDOUT, env=self.environment, cwd=folder,
            )  # fmt: skip
        return started.returncode

    def stop(self, attempt: Attempt, seconds: int) -> None:
        """SIGTERM, then SIGKILL after ``seconds`` (what ECS does to a stopped task)."""
        self._run("stop", "--time", str(seconds), attempt.container)

    def kill(self, attempt: Attempt) -> None:
        self._run("kill", attempt.container)

    def remove(self, attempt: Attempt) -> None:
        self._run("rm", "--force", attempt.container)

    def out_of_memory(self, attempt: Attempt) -> bool:
        """Whether the kernel killed it for its memory limit: podman 4.3 on cgroups v1 does
        not say (State.OOMKilled), the kernel's log names the container's memory cgroup."""
        log = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
        cgroup = f"libpod-{self.ids.get(attempt.container, '?')}"
        return any("oom-kill" in line and cgroup in line for line in log.splitlines())


class Processes:
    """Containers as plain processes: the command run on this machine in an empty folder,
    with only the container's environment (and PATH); nothing of the image or of its limits."""

    def __init__(self):
        self.processes: dict[str, subprocess.Popen] = {}

    def create(self, attempt: Attempt, image: str, command: list[str]) -> str | None:
        if shutil.which(command[0]) is None:
            return f"executable file not found: {command[0]}"
        self.processes[attempt.container] = command  # started by run
        return None

    def run(self, attempt: Attempt) -> int:
        with tempfile.TemporaryDirectory() as folder, open(attempt.log, "w") as log:
            process = subprocess.Popen(
                self.processes[attempt.container], cwd=folder, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                env={"PATH": os.environ["PATH"], **attempt.environment},
            )  # fmt: skip
            self.processes[attempt.container] = process
            code = process.wait()
        return 128 - code if code < 0 else code  # killed by a signal: as a container says

    def _signal(self, attempt: Attempt, number: int) -> None:
        process = self.processes.get(attempt.container)
        if isinstance(process, subprocess.Popen):
            try:
                os.killpg(process.pid, number)
            except ProcessLookupError:
                pass

    def stop(self, attempt: Attempt, seconds: int) -> None:
        self._signal(attempt, signal.SIGTERM)
        if not attempt.done.wait(seconds):
            self._signal(attempt, signal.SIGKILL)

    def kill(self, attempt: Attempt) -> None:
        self._signal(attempt, signal.SIGKILL)

    def remove(self, attempt: Attempt) -> None:
        self.processes.pop(attempt.container, None)

    def out_of_memory(self, attempt: Attempt) -> bool:
        return False  # plain processes have no memory limit


@dataclass
class BatchServer:
    """The stand-in: ``podman`` (run with ``podman_environment``) runs the containers, at
    most ``slots`` at a time; ``podman=None`` runs each command as a plain process.

    ``role_credentials`` are the job role's temporary credentials (``AccessKeyId``,
    ``SecretAccessKey``, ``Token``), served to containers only. Each container's output is
    kept under ``logs`` (CloudWatch's part). ``stop_seconds`` is how long a stopped container
    has between SIGTERM and SIGKILL (ECS's default, 30).
    """

    podman: list[str] | None
    podman_environment: dict[str, str]
    role_credentials: dict[str, str]
    region: str
    logs: Path
    slots: int = 2
    queue: str = "etm"
    stop_seconds: int = 30
    #: Every revision registered, by ARN: the request, with its ARN, revision and status.
    definitions: dict[str, dict] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    #: The messages of refused requests (and of the stand-in's own faults, answered 500).
    refused: list[str] = field(default_factory=list)
    #: How many times containers fetched the role's credentials.
    credential_reads: int = 0

    def __post_init__(self):
        self.runtime = Podman(self.podman, self.podman_environment) if self.podman else Processes()
        self.queue_arn = self._arn("job-queue", self.queue)
        self._changed = threading.Condition()
        self._runnable: list[Job] = []
        self._running = 0
        self._held: str | None = None
        self._reclaims: list[Reclaim] = []
        self._stopping = False
        self._scheduler = threading.Thread(target=self._schedule, daemon=True)
        self._scheduler.start()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != ROLE_CREDENTIALS:
                    self._api()
                    return
                with server._changed:  # containers ask at once
                    server.credential_reads += 1
                expires = datetime.now(UTC) + timedelta(hours=1)
                answer = {**server.role_credentials, "Expiration": expires.isoformat()}
                self._send(200, answer)

            def _api(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                self._send(*server.answer(self.command, self.path, body))

            do_POST = do_DELETE = _api

            def _send(self, status: int, answer: dict) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if status != 200:
                    self.send_header("x-amzn-ErrorType", answer["__type"])
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._changed:
            self._stopping = True
            running = [a for j in self.jobs.values() for a in j.attempts if not a.done.is_set()]
            self._changed.notify_all()
        for attempt in running:
            self.runtime.kill(attempt)

    def exit_codes(self) -> list[int | None]:
        return [job.exit_code for job in self.jobs.values()]

    # What tests do beyond the API.
    def hold(self, reason: str = NO_CAPACITY) -> None:
        """Keep every job that is or becomes RUNNABLE there, with ``reason`` as its
        statusReason (no capacity, an INVALID compute environment, no route to ECR)."""
        with self._changed:
            self._held = reason
            self._changed.notify_all()

    def release(self) -> None:
        with self._changed:
            self._held = None
            self._changed.notify_all()

    def reclaim(self, name: str = "*", attempt: int = 1, after: float = 0.0) -> Reclaim:
        """EC2 will reclaim the Spot instance of the first job whose name matches ``name``
        once its attempt ``attempt`` has run ``after`` seconds: its container is killed, the
        attempt ends without an exit code and as ``SPOT_LOST``, and the job's retry strategy
        decides what follows."""
        spot = Reclaim(name, attempt, after)
        with self._changed:
            self._reclaims.append(spot)
        return spot

    def wait(self, job_id: str, *statuses: str, timeout: float = 60) -> Job:
        """The job once its status is one of ``statuses`` (by default, a final one)."""
        with self._changed:
            job = self.jobs[job_id]
            if not self._changed.wait_for(lambda: job.status in (statuses or TERMINAL), timeout):
                raise TimeoutError(f"job {job.name} is {job.status}, not {statuses or TERMINAL}")
            return job

    # The API.
    def answer(self, method: str, path: str, body: bytes) -> tuple[int, dict]:
        url = urlsplit(path)
        try:
            params = json.loads(body) if body else {}
        except ValueError:
            params = None
        if not isinstance(params, dict):
            self.refused.append(f"not a JSON object: {body[:100]!r}")
            return 400, {"__type": "ClientException", "message": self.refused[-1]}
        if url.path.startswith("/v1/tags/"):
            params["resourceArn"] = unquote(url.path.removeprefix("/v1/tags/"))
            if method == "DELETE":
                params["tagKeys"] = parse_qs(url.query).get("tagKeys", [])
            operation = {"GET": "ListTagsForResource", "POST": "TagResource",
                         "DELETE": "UntagResource"}[method]  # fmt: skip
        else:
            operation = self.OPERATIONS.get(url.path.rstrip("/").rsplit("/", 1)[-1], "")
        handler = getattr(self, f"_{operation}", None)
        try:
            if handler is None:
                raise Refused(f"the stand-in does not answer {url.path}")
            _validate(operation, params)
            with self._changed:
                answer = handler(params)
                self._changed.notify_all()
            return 200, answer
        except Refused as error:
            self.refused.append(str(error))
            return 400, {"__type": "ClientException", "message": str(error)}
        except Exception as error:  # the stand-in's own fault: as Batch's, a ServerException
            self.refused.append(f"the stand-in failed: {error!r}")
            return 500, {"__type": "ServerException", "message": self.refused[-1]}

    OPERATIONS = {
        MODEL.operation_model(name).http["requestUri"].removeprefix("/v1/"): name
        for name in MODEL.operation_names
    }

    def _arn(self, kind: str, name: str) -> str:
        return f"arn:aws:batch:{self.region}:{ACCOUNT}:{kind}/{name}"

    def _RegisterJobDefinition(self, body: dict) -> dict:
        name = body["jobDefinitionName"]
        if not NAME.fullmatch(name):
            raise Refused(f"jobDefinitionName '{name}' does not match {NAME.pattern}")
        if body.get("platformCapabilities", ["EC2"]) != ["EC2"]:
            raise Refused(f"the stand-in's queue is EC2: platform {body['platformCapabilities']}")
        for unsupported in ("nodeProperties", "eksProperties", "ecsProperties"):
            if unsupported in body or body["type"] != "container":
                raise Refused(f"the stand-in runs containerProperties jobs only, not {unsupported}")
        if "containerProperties" not in body:
            raise Refused("containerProperties is required for a container job definition")
        properties = body["containerProperties"]
        if unsupported := sorted(set(properties) - CONTAINER_PROPERTIES):
            raise Refused(f"the stand-in does not run containerProperties {unsupported}")
        if not IMAGE.fullmatch(image := properties.get("image", "")):
            raise Refused(f"containerProperties.image '{image}' does not match {IMAGE.pattern}")
        _resources(properties, "containerProperties")
        _check_environment(properties.get("environment", ()), "containerProperties")
        _check_retry_strategy(body.get("retryStrategy"))
        _check_timeout(body.get("timeout"))
        _check_tags(body.get("tags", {}), "tags")
        if (size := _size(body)) > DEFINITION_BYTES:
            raise Refused(f"Job definition size must be at most 24 KiB, got {size} bytes")
        revision = 1 + sum(d["jobDefinitionName"] == name for d in self.definitions.values())
        arn = self._arn("job-definition", f"{name}:{revision}")
        self.definitions[arn] = {
            **body, "jobDefinitionArn": arn, "revision": revision, "status": "ACTIVE",
            "platformCapabilities": ["EC2"], "containerOrchestrationType": "ECS",
        }  # fmt: skip
        return {"jobDefinitionName": name, "jobDefinitionArn": arn, "revision": revision}

    def _definition(self, reference: str) -> dict | None:
        """By ARN or name, with or without its revision; without one, the latest active."""
        name, _, revision = reference.removeprefix(self._arn("job-definition", "")).partition(":")
        found = [
            d for d in self.definitions.values()
            if d["jobDefinitionName"] == name
            and (str(d["revision"]) == revision if revision else d["status"] == "ACTIVE")
        ]  # fmt: skip
        return found[-1] if found else None

    def _DeregisterJobDefinition(self, body: dict) -> dict:
        # "The name and revision (name:revision) or full Amazon Resource Name (ARN)"; one
        # not found is no error, as moto answers.
        reference = body["jobDefinition"]
        if ":" not in reference.removeprefix(self._arn("job-definition", "")):
            raise Refused(f"jobDefinition {reference}: name:revision or ARN")
        definition = self._definition(reference)
        if definition is not None:
            definition["status"] = "INACTIVE"
        return {}

    def _DescribeJobDefinitions(self, body: dict) -> dict:
        references = body.get("jobDefinitions")
        if references is not None:
            if len(references) > 100 or set(body) - {"jobDefinitions"}:
                raise Refused("jobDefinitions: up to 100, and no other parameter with it")
            found = [d for d in self.definitions.values() if any(
                d["jobDefinitionArn"] == self._arn("job-definition", r.split("/")[-1])
                or d["jobDefinitionName"] == r for r in references)]  # fmt: skip
        else:
            found = [
                d for d in self.definitions.values()
                if body.get("jobDefinitionName", d["jobDefinitionName"]) == d["jobDefinitionName"]
                and body.get("status", d["status"]) == d["status"]
            ]  # fmt: skip
        page, token = self._page(found, body, 100)
        return {"jobDefinitions": page, **token}

    def _page(self, items: list, body: dict, most: int) -> tuple[list, dict]:
        size = body.get("maxResults", most)
        if not 1 <= size <= most:
            raise Refused(f"maxResults {size}: between 1 and {most}")
        start = 0
        if "nextToken" in body:
            try:
                start = json.loads(base64.b64decode(body["nextToken"]))["start"]
            except (ValueError, KeyError, TypeError):
                raise Refused(f"nextToken {body['nextToken']!r} is not valid") from None
        rest = items[start + size :]
        token = base64.b64encode(json.dumps({"start": start + size}).encode()).decode()
        return items[start : start + size], ({"nextToken": token} if rest else {})

    def _SubmitJob(self, body: dict) -> dict:
        name = body["jobName"]
        if not NAME.fullmatch(name):
            raise Refused(f"jobName '{name}' does not match {NAME.pattern}")
        if body["jobQueue"] not in (self.queue, self.queue_arn):
            raise Refused(f"Job queue {body['jobQueue']} does not exist")
        if unsupported := sorted(set(body) & UNSUPPORTED_JOB):
            raise Refused(f"the stand-in does not run jobs with {unsupported}")
        if "shareIdentifier" in body:  # SubmitJob: only for a queue with a fair-share policy
            raise Refused("shareIdentifier: the job queue has no fair-share scheduling policy")
        definition = self._definition(body["jobDefinition"])
        if definition is None or definition["status"] != "ACTIVE":
            state = "unknown" if definition is None else "INACTIVE"
            raise Refused(f"Job definition {body['jobDefinition']} is {state}")
        depends_on = body.get("dependsOn", [])
        if len(depends_on) > DEPENDENCIES:
            raise Refused(f"dependsOn: {len(depends_on)} jobs, at most {DEPENDENCIES}")
        for dependency in depends_on:
            if dependency.get("jobId") not in self.jobs:
                raise Refused(f"dependsOn: job {dependency.get('jobId')} does not exist")
        overrides = body.get("containerOverrides")
        properties = dict(definition["containerProperties"])
        if overrides is not None:
            if unsupported := sorted(set(overrides) - CONTAINER_OVERRIDES):
                raise Refused(f"the stand-in does not take containerOverrides {unsupported}")
            _check_environment(overrides.get("environment", ()), "containerOverrides")
            merged = {e["name"]: e["value"] for e in properties.get("environment", ())}
            merged.update({e["name"]: e["value"] for e in overrides.get("environment", ())})
            replaced = {r["type"]: r for r in properties.get("resourceRequirements", ())}
            replaced.update({r["type"]: r for r in overrides.get("resourceRequirements", ())})
            properties.update(
                command=overrides.get("command", properties.get("command", [])),
                environment=[{"name": n, "value": v} for n, v in merged.items()],
                resourceRequirements=list(replaced.values()),
            )  # fmt: skip
        resources = _resources(properties, "containerProperties with containerOverrides")
        parameters = {**definition.get("parameters", {}), **body.get("parameters", {})}
        properties["command"] = [
            next((part.replace(f"Ref::{k}", v) for k, v in parameters.items()
                  if f"Ref::{k}" in part), part)
            for part in properties.get("command", [])
        ]  # fmt: skip
        retry_strategy = body.get("retryStrategy", definition.get("retryStrategy"))
        _check_retry_strategy(retry_strategy)
        timeout = body.get("timeout", definition.get("timeout"))
        _check_timeout(timeout)
        tags = body.get("tags", {})
        _check_tags(tags, "tags")
        if (size := _size(body)) > JOB_BYTES:
            raise Refused(f"Job size must be at most 30 KiB, got {size} bytes")
        propagate = body.get("propagateTags", definition.get("propagateTags", False))
        job_id = str(uuid.uuid4())
        job = Job(
            job_id, name, self._arn("job", job_id), self.queue_arn, definition, properties,
            resources, _now(), retry_strategy,
            None if timeout is None else timeout["attemptDurationSeconds"], depends_on, tags,
            propagate, overrides,
        )  # fmt: skip
        self.jobs[job.id] = job
        return {"jobArn": job.arn, "jobName": job.name, "jobId": job.id}

    def _job(self, reference: str) -> Job | None:
        return self.jobs.get(reference.removeprefix(self._arn("job", "")))

    def _DescribeJobs(self, body: dict) -> dict:
        if len(body["jobs"]) > 100:  # DescribeJobs: "A list of up to 100 job IDs."
            raise Refused(f"jobs: {len(body['jobs'])} job IDs, at most 100")
        found = (self._job(reference) for reference in body["jobs"])
        return {"jobs": [job.describe() for job in found if job is not None]}

    def _ListJobs(self, body: dict) -> dict:
        owners = [key for key in ("jobQueue", "arrayJobId", "multiNodeJobId") if key in body]
        if len(owners) != 1:
            raise Refused("ListJobs: one of jobQueue, arrayJobId and multiNodeJobId")
        if "jobQueue" in body and body["jobQueue"] not in (self.queue, self.queue_arn):
            raise Refused(f"Job queue {body['jobQueue']} does not exist")
        # Neither array nor multi-node jobs run here: they have no children.
        jobs = list(self.jobs.values()) if "jobQueue" in body else []
        filters = body.get("filters")
        if filters is None:
            # "If you don't specify a status, only RUNNING jobs are returned."
            jobs = [job for job in jobs if job.status == body.get("jobStatus", "RUNNING")]
        else:
            if len(filters) != 1:
                raise Refused("filters: only one filter can be used at a time")
            jobs = [job for job in jobs if self._filtered(job, filters[0])]
        jobs.reverse()  # the most recent first, also within a millisecond
        jobs.sort(key=lambda job: job.created_at, reverse=True)
        page, token = self._page([job.summary() for job in jobs], body, 100 if filters else 1000)
        return {"jobSummaryList": page, **token}

    def _filtered(self, job: Job, condition: dict) -> bool:
        """ListJobs' filters, as the API reference describes them."""
        name, values = condition.get("name"), condition.get("values") or []
        if name == "JOB_NAME":  # case-insensitive; a trailing "*" matches a prefix
            return any(
                job.name.lower().startswith(v[:-1].lower()) if v.endswith("*")
                else job.name.lower() == v.lower() for v in values
            )  # fmt: skip
        if name == "JOB_DEFINITION":  # case-sensitive; by ARN, name, or name prefix with "*"
            definition = job.definition
            return any(
                definition["jobDefinitionArn"] == v if v.startswith("arn:")
                else definition["jobDefinitionName"].startswith(v[:-1]) if v.endswith("*")
                else definition["jobDefinitionName"] == v for v in values
            )  # fmt: skip
        if name in ("BEFORE_CREATED_AT", "AFTER_CREATED_AT"):
            if len(values) != 1 or not values[0].isdigit():
                raise Refused(f"filters: {name} takes one time in milliseconds since the epoch")
            if name == "BEFORE_CREATED_AT":
                return job.created_at < int(values[0])
            return job.created_at > int(values[0])
        if name == "SHARE_IDENTIFIER":
            return False  # the queue has no fair-share policy: no job has a share
        raise Refused(f"filters: unknown filter name {name}")

    def _stop_job(self, body: dict, started_too: bool) -> dict:
        # moto: an empty jobId or reason is refused, an unknown job is no error.
        if not body["jobId"] or not body["reason"]:
            raise Refused("jobId and reason are required (cannot be empty strings)")
        if len(body["reason"]) > 1024:
            raise Refused("reason: at most 1024 characters")
        job = self._job(body["jobId"])
        if job is None or job.status in TERMINAL or job.stopping:
            return {}
        if job.status in ("SUBMITTED", "PENDING", "RUNNABLE"):
            job.is_cancelled = True
        elif started_too:
            job.is_terminated = True
        else:
            return {}  # CancelJob: STARTING and RUNNING jobs aren't cancelled
        job.stopping = body["reason"]
        if job.status in ("SUBMITTED", "RUNNABLE"):
            self._finish(job, "FAILED", body["reason"])
        elif job.status in ("STARTING", "RUNNING"):
            self._stop_attempt(job.attempts[-1], "terminate")
        # A PENDING job "is cancelled after all dependency jobs are completed".
        return {}

    def _TerminateJob(self, body: dict) -> dict:
        return self._stop_job(body, started_too=True)

    def _CancelJob(self, body: dict) -> dict:
        return self._stop_job(body, started_too=False)

    def _tagged(self, arn: str) -> dict[str, str]:
        if arn in self.definitions:
            return self.definitions[arn].setdefault("tags", {})
        job = self._job(arn) if arn.startswith(self._arn("job", "")) else None
        if job is None:
            raise Refused(f"resource {arn} does not exist")
        return job.tags

    def _TagResource(self, body: dict) -> dict:
        tags = self._tagged(body["resourceArn"])
        _check_tags({**tags, **body["tags"]}, "tags")
        tags.update(body["tags"])
        return {}

    def _UntagResource(self, body: dict) -> dict:
        tags = self._tagged(body["resourceArn"])
        for key in body["tagKeys"]:
            tags.pop(key, None)
        return {}

    def _ListTagsForResource(self, body: dict) -> dict:
        return {"tags": dict(self._tagged(body["resourceArn"]))}

    # The scheduler: every change of state happens under ``_changed``, and wakes it.
    def _set(self, job: Job, status: str, reason: str | None = None) -> None:
        job.status, job.status_reason = status, reason
        job.states.append(status)
        self._changed.notify_all()

    def _finish(self, job: Job, status: str, reason: str | None) -> None:
        if job in self._runnable:
            self._runnable.remove(job)
        job.stopped_at = _now()
        self._set(job, status, reason)

    def _schedule(self) -> None:
        with self._changed:
            while not self._stopping:
                for job in list(self.jobs.values()):
                    self._advance(job)
                self._dispatch()
                self._changed.wait()

    def _advance(self, job: Job) -> None:
        """SUBMITTED and PENDING jobs, as the job states page of the user guide has them."""
        if job.status == "SUBMITTED":
            if job.depends_on:
                self._set(job, "PENDING")
            else:
                self._runnable.append(job)
                self._set(job, "RUNNABLE")
        if job.status != "PENDING":
            return
        states = [self.jobs[d["jobId"]].status for d in job.depends_on]
        if "FAILED" in states:
            self._finish(job, "FAILED", DEPENDENCY_FAILED)
        elif all(state == "SUCCEEDED" for state in states):
            if job.stopping:
                self._finish(job, "FAILED", job.stopping)
            else:
                self._runnable.append(job)
                self._set(job, "RUNNABLE")

    def _dispatch(self) -> None:
        for job in list(self._runnable):
            fits = (
                int(job.resources["VCPU"]) <= LARGEST_VCPUS
                and int(job.resources["MEMORY"]) <= LARGEST_MEMORY_MIB
                and int(job.resources.get("GPU", "0")) == 0
            )  # fmt: skip
            # Jobs that can never run, or wait for capacity, stay RUNNABLE and say why.
            waiting = TOO_BIG if not fits else self._held
            if waiting is not None or self._running >= self.slots:
                if job.status_reason != waiting:
                    job.status_reason = waiting
                    self._changed.notify_all()
                continue
            self._runnable.remove(job)
            self._running += 1
            self._set(job, "STARTING")
            attempt = self._attempt(job)
            job.attempts.append(attempt)
            threading.Thread(target=self._run, args=(job, attempt), daemon=True).start()

    def _attempt(self, job: Job) -> Attempt:
        number = len(job.attempts) + 1
        properties, resources = job.properties, job.resources
        vcpus, memory = int(resources["VCPU"]), int(resources["MEMORY"])
        # MEMORY is the container's hard limit (ResourceRequirement), without swap (ECS
        # instances have none); VCPU maps to CPU shares, and the stand-in also caps it.
        args = [
            "--cpus", str(vcpus), "--cpu-shares", str(1024 * vcpus),
            "--memory", f"{memory}m", "--memory-swap", f"{memory}m",
        ]  # fmt: skip
        if "user" in properties:
            args += ["--user", properties["user"]]
        if properties.get("privileged"):
            args.append("--privileged")
        if properties.get("readonlyRootFilesystem"):
            args.append("--read-only")
        for limit in properties.get("ulimits", ()):
            args += ["--ulimit", f"{limit['name']}={limit['softLimit']}:{limit['hardLimit']}"]
        environment = {e["name"]: e["value"] for e in properties.get("environment", ())}
        environment.update(
            AWS_BATCH_JOB_ID=job.id, AWS_BATCH_JOB_ATTEMPT=str(number),
            AWS_BATCH_JQ_NAME=self.queue, AWS_BATCH_CE_NAME=f"{self.queue}-ec2",
            AWS_REGION=self.region,
            AWS_CONTAINER_CREDENTIALS_FULL_URI=self.endpoint + ROLE_CREDENTIALS,
        )  # fmt: skip
        log = self.logs / f"{job.id}-{number}.log"
        return Attempt(number, f"etm-batch-{job.id}-{number}", args, environment, log)

    def _run(self, job: Job, attempt: Attempt) -> None:
        """One attempt, from STARTING to its end, then what its job does next."""
        problem = None
        overrides = json.dumps(job.overrides or {}, separators=(",", ":"))
        if len(overrides) > OVERRIDES_CHARACTERS:
            problem = f"Container Overrides length must be at most {OVERRIDES_CHARACTERS}"
        elif len(job.task_tags) > TAGS:  # propagateTags: "the job is moved to the FAILED state"
            problem = f"{len(job.task_tags)} tags to propagate to the task, at most {TAGS}"
        error = problem or self.runtime.create(
            attempt, job.properties["image"], job.properties["command"]
        )
        with self._changed:
            if problem is not None:
                self._end(job, attempt, None, problem)
                return
            if error is not None:
                kind = "Pull" if "image not known" in error else "Create"
                self._end(job, attempt, f"Cannot{kind}ContainerError: {error}"[:255], NOT_STARTED)
                return
            attempt.started_at = job.started_at = _now()
            self._set(job, "RUNNING")
            if job.stopping:
                self._stop_attempt(attempt, "terminate")
            for spot in self._reclaims:
                if (spot.job, spot.attempt) == (None, attempt.number) and fnmatchcase(
                    job.name, spot.name
                ):
                    spot.job = job
                    timer = threading.Timer(spot.after, self._stop_attempt, (attempt, "spot"))
                    timer.daemon = True
                    timer.start()
                    break
            if job.timeout is not None:
                timer = threading.Timer(job.timeout, self._stop_attempt, (attempt, "timeout"))
                timer.daemon = True
                timer.start()
        exit_code = self.runtime.run(attempt)
        attempt.done.set()
        killed = exit_code == 137 and attempt.stop is None and self.runtime.out_of_memory(attempt)
        self.runtime.remove(attempt)
        with self._changed:
            if attempt.stop == "spot":
                self._end(job, attempt, None, SPOT_LOST, exit_code=None)
            elif attempt.stop == "timeout":
                self._end(job, attempt, None, TIMED_OUT, exit_code=exit_code)
            elif attempt.stop == "terminate":
                self._end(job, attempt, None, job.stopping, exit_code=exit_code)
            else:
                reason = OUT_OF_MEMORY if killed else None
                self._end(job, attempt, reason, EXITED, exit_code=exit_code)

    def _stop_attempt(self, attempt: Attempt, why: str) -> None:
        """Stop a container from another thread: at once for a Spot loss, as ECS stops a
        task otherwise; again until it is gone (it may not have started yet)."""
        with self._changed:
            if attempt.done.is_set() or attempt.stop is not None:
                return
            attempt.stop = why

        def stop():
            while not attempt.done.is_set():
                if why == "spot":
                    self.runtime.kill(attempt)
                else:
                    self.runtime.stop(attempt, self.stop_seconds)
                attempt.done.wait(0.5)

        threading.Thread(target=stop, daemon=True).start()

    def _end(self, job: Job, attempt: Attempt, reason: str | None, status_reason: str,
             exit_code: int | None = None) -> None:  # fmt: skip
        """An attempt's end (under ``_changed``): SUCCEEDED, RUNNABLE again or FAILED."""
        attempt.done.set()
        attempt.stopped_at = _now()
        attempt.exit_code, attempt.reason, attempt.status_reason = exit_code, reason, status_reason
        self._running -= 1
        if exit_code == 0 and attempt.stop is None:
            self._finish(job, "SUCCEEDED", status_reason)
        elif attempt.stop in ("terminate", "timeout") or not self._retries(job, attempt):
            # Neither terminated nor timed-out jobs are retried (Automated job retries).
            self._finish(job, "FAILED", status_reason)
        else:
            self._runnable.append(job)
            self._set(job, "RUNNABLE")

    @staticmethod
    def _retries(job: Job, attempt: Attempt) -> bool:
        """RetryStrategy: up to ``attempts`` attempts; the first evaluateOnExit entry whose
        conditions all match decides; none matching retries (API reference, user guide)."""
        strategy = job.retry_strategy or {}
        if len(job.attempts) >= strategy.get("attempts", 1):
            return False
        exit_code = None if attempt.exit_code is None else str(attempt.exit_code)
        for rule in strategy.get("evaluateOnExit", ()):
            if (
                _matches(rule.get("onStatusReason"), attempt.status_reason)
                and _matches(rule.get("onReason"), attempt.reason)
                and _matches(rule.get("onExitCode"), exit_code)
            ):
                return rule["action"].upper() == "RETRY"
        return True
