"""A stand-in for the AWS Batch API on loopback: it runs each job's command in the image.

It answers the calls the etm-batch executor makes (RegisterJobDefinition, SubmitJob,
DescribeJobs, DeregisterJobDefinition, TerminateJob; reached through
``AWS_ENDPOINT_URL_BATCH``), and checks each job definition as Batch does for an EC2
compute environment: platform EC2, whole vCPUs and memory in MiB that fit its largest
instance. It runs each submitted job's registered command with ``podman run --network
host`` in the image, in an empty working directory, with only the job definition's
environment plus what Batch gives a job with a job role: its region, and the address
from which the AWS SDKs fetch the role's temporary credentials (as from the ECS agent).
Nothing of the executor or of etm is replaced: only AWS is.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

#: Where containers fetch the job role's credentials (the ECS agent's address, on loopback).
ROLE_CREDENTIALS = "/v2/credentials/etm-batch-job"
#: The largest instance of the stand-in's compute environment (an m5.2xlarge).
LARGEST_VCPUS, LARGEST_MEMORY_MIB = 8, 30_000


@dataclass
class Job:
    id: str
    name: str
    definition: dict
    status: str = "SUBMITTED"
    exit_code: int | None = None
    reason: str = ""
    log: Path | None = None


@dataclass
class BatchServer:
    """The stand-in: ``podman`` (run with ``podman_environment``) runs the containers, at
    most ``slots`` at a time.

    ``role_credentials`` are the job role's temporary credentials (``AccessKeyId``,
    ``SecretAccessKey``, ``Token``), served to containers only. Each container's output is
    kept under ``logs`` (CloudWatch's part).
    """

    podman: list[str]
    podman_environment: dict[str, str]
    role_credentials: dict[str, str]
    region: str
    logs: Path
    slots: int = 2
    definitions: dict[str, dict] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    #: How many times containers fetched the role's credentials.
    credential_reads: int = 0

    def __post_init__(self):
        self._ids = itertools.count(1)
        self._slots = threading.BoundedSemaphore(self.slots)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != ROLE_CREDENTIALS:
                    self.send_error(404)
                    return
                with server._lock:  # containers ask at once
                    server.credential_reads += 1
                expires = datetime.now(UTC) + timedelta(hours=1)
                answer = {**server.role_credentials, "Expiration": expires.isoformat()}
                self._send(200, answer)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                action = self.path.rstrip("/").rsplit("/", 1)[-1]
                self._send(*server.answer(action, body))

            def _send(self, status: int, answer: dict) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # The API.
    def answer(self, action: str, body: dict) -> tuple[int, dict]:
        handler = {
            "registerjobdefinition": self.register,
            "submitjob": self.submit,
            "describejobs": self.describe,
            "deregisterjobdefinition": self.deregister,
            "terminatejob": self.terminate,
        }.get(action)
        if handler is None:
            return 400, {"message": f"the stand-in does not answer {action}"}
        try:
            return 200, handler(body)
        except ValueError as error:
            self.refused.append(str(error))
            return 400, {"__type": "ClientException", "message": str(error)}

    def register(self, body: dict) -> dict:
        properties = body["containerProperties"]
        if body.get("platformCapabilities", ["EC2"]) != ["EC2"]:
            raise ValueError(f"platform {body['platformCapabilities']}: this queue is EC2")
        resources = {r["type"]: r["value"] for r in properties["resourceRequirements"]}
        vcpus, memory = resources["VCPU"], resources["MEMORY"]
        if not (vcpus.isdigit() and 1 <= int(vcpus) <= LARGEST_VCPUS):
            raise ValueError(f"vCPU value {vcpus} does not fit {LARGEST_VCPUS}-vCPU instances")
        if not (memory.isdigit() and 4 <= int(memory) <= LARGEST_MEMORY_MIB):
            raise ValueError(f"memory {memory} MiB does not fit {LARGEST_MEMORY_MIB} MiB")
        name = body["jobDefinitionName"]
        self.definitions[name] = body
        arn = f"arn:aws:batch:us-east-1:123456789012:job-definition/{name}:1"
        return {"jobDefinitionName": name, "jobDefinitionArn": arn, "revision": 1}

    def submit(self, body: dict) -> dict:
        definition = self.definitions[body["jobDefinition"].rsplit(":", 1)[0]]
        job = Job(f"job-{next(self._ids)}", body["jobName"], definition)
        with self._lock:
            self.jobs[job.id] = job
        threading.Thread(target=self._run, args=(job,), daemon=True).start()
        return {"jobId": job.id, "jobName": job.name, "jobArn": f"arn:aws:batch:::job/{job.id}"}

    def describe(self, body: dict) -> dict:
        found = [self.jobs[job_id] for job_id in body["jobs"] if job_id in self.jobs]
        return {
            "jobs": [
                {
                    "jobId": job.id,
                    "jobName": job.name,
                    "status": job.status,
                    "statusReason": job.reason,
                    "jobDefinition": job.definition["jobDefinitionName"],
                    "container": {} if job.exit_code is None else {"exitCode": job.exit_code},
                }  # fmt: skip
                for job in found
            ]
        }

    def deregister(self, body: dict) -> dict:
        return {}

    def terminate(self, body: dict) -> dict:
        return {}

    # The containers.
    def _run(self, job: Job) -> None:
        properties = job.definition["containerProperties"]
        environment = {e["name"]: e["value"] for e in properties["environment"]}
        environment.update(
            AWS_REGION=self.region,
            AWS_CONTAINER_CREDENTIALS_FULL_URI=self.endpoint + ROLE_CREDENTIALS,
        )
        job.log = self.logs / f"{job.id}.log"
        command = [
            *self.podman, "run", "--rm", "--network", "host",
            *(item for name, value in environment.items() for item in ("-e", f"{name}={value}")),
            properties["image"], *properties["command"],
        ]  # fmt: skip
        with self._slots:
            job.status = "RUNNING"
            with open(job.log, "w") as log:
                finished = subprocess.run(
                    command, stdout=log, stderr=subprocess.STDOUT, env=self.podman_environment
                )
        job.exit_code = finished.returncode
        job.reason = "" if finished.returncode == 0 else "Essential container in task exited"
        job.status = "SUCCEEDED" if finished.returncode == 0 else "FAILED"

    def exit_codes(self) -> list[int | None]:
        return [job.exit_code for job in self.jobs.values()]
