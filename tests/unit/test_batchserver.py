"""The AWS Batch stand-in (tests/batchserver.py) through boto3's real Batch client: it refuses
what Batch refuses and behaves as Batch does. Containers are plain processes here, but for
the tests marked slow, which run them in an image with podman."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import boto3
import pytest
from batchserver import (
    NO_CAPACITY,
    OUT_OF_MEMORY,
    SPOT_LOST,
    TIMED_OUT,
    TOO_BIG,
    BatchServer,
)
from botocore.config import Config
from botocore.exceptions import ClientError

ROLE = {"AccessKeyId": "ASIASTANDIN", "SecretAccessKey": "secret", "Token": "token"}
QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/etm"


@pytest.fixture
def server(tmp_path):
    server = BatchServer(None, {}, ROLE, "us-east-1", tmp_path, stop_seconds=2)
    yield server
    server.stop()


def client(server: BatchServer, validate: bool = True):
    """boto3's Batch client; without its own validation, to see what the server refuses."""
    return boto3.client(
        "batch", endpoint_url=server.endpoint, region_name="us-east-1",
        aws_access_key_id="AKIASTANDIN", aws_secret_access_key="secret",
        config=Config(parameter_validation=validate, retries={"max_attempts": 1}),
    )  # fmt: skip


@pytest.fixture
def batch(server):
    return client(server)


def define(batch, name="etm-job", command=("true",), container=None, **extra) -> str:
    """A job definition: 2 vCPUs and 4 GiB, ``container`` added to its containerProperties."""
    properties = {
        "image": "localhost/etm-test:1",
        "command": list(command),
        "resourceRequirements": [
            {"type": "VCPU", "value": "2"},
            {"type": "MEMORY", "value": "4096"},
        ],
        **(container or {}),
    }
    extra.setdefault("type", "container")
    answer = batch.register_job_definition(
        jobDefinitionName=name, containerProperties=properties, **extra
    )
    return answer["jobDefinitionArn"]


def run(batch, definition: str, name: str = "etm-job", **extra) -> str:
    return batch.submit_job(jobName=name, jobQueue=QUEUE, jobDefinition=definition, **extra)[
        "jobId"
    ]


def described(batch, job_id: str) -> dict:
    return batch.describe_jobs(jobs=[job_id])["jobs"][0]


def refusal(call, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as error:
        call(*args, **kwargs)
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error.value.response["Error"]["Code"] == "ClientException"
    return error.value.response["Error"]["Message"]


def raw(server: BatchServer, operation: str, body: dict | bytes) -> str:
    """The message of a request sent as it is, past what boto3 would serialize."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{server.endpoint}/v1/{operation}", data, method="POST")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request)
    assert error.value.code == 400 and error.value.headers["x-amzn-ErrorType"] == "ClientException"
    return json.load(error.value)["message"]


@pytest.mark.parametrize(
    "name",
    ["r50.0_tile6", "a" * 129, "-etm", "_etm", "etm job", "étm", ""],
)
def test_job_and_definition_names_are_refused_outside_letters_digits_hyphens_underscores(
    server, batch, name
):
    definition = define(batch)
    unchecked = client(server, validate=False)
    assert "does not match" in refusal(
        unchecked.submit_job, jobName=name, jobQueue=QUEUE, jobDefinition=definition
    )
    assert "does not match" in refusal(define, unchecked, name=name)
    assert len(server.refused) == 2 and server.jobs == {}


def test_names_of_up_to_128_characters_starting_alphanumeric_are_taken(server, batch):
    for name in ("a" * 128, "7", "r50_0-tile6_etasw_2020"):
        assert server.wait(run(batch, define(batch, name=name), name=name)).status == "SUCCEEDED"
    assert server.refused == []


def test_requests_are_checked_against_botocores_model(server):
    unchecked = client(server, validate=False)
    definition = define(unchecked)
    messages = [
        refusal(unchecked.submit_job, jobName="j", jobDefinition=definition),  # no jobQueue
        raw(server, "describejobs", {"jobs": "not-a-list"}),
        raw(server, "describejobs", b"[1]"),
        raw(server, "submitjob", {"jobName": "j", "jobQueue": QUEUE, "jobDefinition": "d", "x": 1}),
        refusal(define, unchecked, type="docker"),
        refusal(unchecked.list_jobs, jobQueue=QUEUE, jobStatus="DONE"),
        refusal(unchecked.terminate_job, jobId="j", reason=7),
    ]
    assert "Missing required parameter" in messages[0] and "jobQueue" in messages[0]
    assert "Invalid type" in messages[1] and messages[2] == "not a JSON object: b'[1]'"
    assert "Unknown parameter" in messages[3]
    assert "enum value set" in messages[4] and "enum value set" in messages[5]
    assert "Invalid type" in messages[6]
    assert server.refused == messages


def test_a_job_definition_over_24_kib_is_refused(server, batch):
    base = len(json.dumps(
        {"jobDefinitionName": "big", "type": "container", "containerProperties": {
            "image": "localhost/etm-test:1", "command": ["x"],
            "resourceRequirements": [{"type": "VCPU", "value": "2"},
                                     {"type": "MEMORY", "value": "4096"}]}},
        separators=(",", ":"),
    ))  # fmt: skip
    fits = "x" * (24 * 1024 - base + 1)
    define(batch, name="big", command=[fits])  # 24 KiB exactly
    message = refusal(define, batch, name="big", command=[fits + "x"])
    assert message == "Job definition size must be at most 24 KiB, got 24577 bytes"


def test_a_job_over_30_kib_is_refused(server, batch):
    definition = define(batch)
    message = refusal(run, batch, definition, parameters={"p": "x" * 31 * 1024})
    assert message.startswith("Job size must be at most 30 KiB")


@pytest.mark.parametrize(
    "tags, problem",
    [
        ({f"k{i}": "v" for i in range(51)}, "at most 50"),
        ({"aws:owner": "etm"}, "the prefix aws: is reserved"),
        ({"AWS:owner": "etm"}, "the prefix aws: is reserved"),
        ({"owner": "Aws:etm"}, "the prefix aws: is reserved"),
        ({"owner#": "etm"}, "a character outside"),
        ({"owner": "etm;"}, "a character outside"),
    ],
)
def test_bad_tags_are_refused_on_definitions_jobs_and_resources(server, batch, tags, problem):
    definition = define(batch)
    assert problem in refusal(define, batch, name="tagged", tags=tags)
    assert problem in refusal(run, batch, definition, tags=tags)
    assert problem in refusal(batch.tag_resource, resourceArn=definition, tags=tags)


def test_tag_lengths_are_the_models_and_tagging_adds_up_to_50(server, batch):
    unchecked = client(server, validate=False)
    assert "length less than or equal to 128" in refusal(define, unchecked, tags={"k" * 129: "v"})
    assert "length less than or equal to 256" in refusal(define, unchecked, tags={"k": "v" * 257})
    definition = define(batch, tags={f"k{i}": "v" for i in range(49)})
    batch.tag_resource(resourceArn=definition, tags={"k49": "v", "k0": "changed"})
    assert "51 tags, at most 50" in refusal(
        batch.tag_resource, resourceArn=definition, tags={"k50": "v"}
    )
    tags = batch.list_tags_for_resource(resourceArn=definition)["tags"]
    assert len(tags) == 50 and tags["k0"] == "changed"
    batch.untag_resource(resourceArn=definition, tagKeys=["k0", "k1"])
    assert len(batch.list_tags_for_resource(resourceArn=definition)["tags"]) == 48
    assert "does not exist" in refusal(
        batch.list_tags_for_resource, resourceArn=definition[:-1] + "2"
    )


def test_propagated_tags_reach_the_task_job_tags_first_and_the_job_keeps_its_own(server, batch):
    definition = define(batch, tags={"team": "etm", "stage": "test"}, propagateTags=True)
    job_id = run(batch, definition, tags={"stage": "prod", "run": "r1"})
    job = server.wait(job_id)
    assert job.task_tags == {"team": "etm", "stage": "prod", "run": "r1"}
    job_arn = described(batch, job_id)["jobArn"]
    assert batch.list_tags_for_resource(resourceArn=job_arn)["tags"] == {
        "stage": "prod", "run": "r1"
    }  # fmt: skip
    batch.tag_resource(resourceArn=job_arn, tags={"checked": "yes"})
    assert described(batch, job_id)["tags"]["checked"] == "yes"
    # propagateTags on SubmitJob overrides the definition's.
    assert server.wait(run(batch, definition, propagateTags=False)).task_tags == {}


def test_describe_jobs_takes_at_most_100_ids(server, batch):
    job_id = run(batch, define(batch))
    assert len(batch.describe_jobs(jobs=[job_id] + ["unknown"] * 99)["jobs"]) == 1
    assert refusal(batch.describe_jobs, jobs=[job_id] * 101) == "jobs: 101 job IDs, at most 100"


def test_unknown_and_inactive_definitions_and_queues_are_refused(server, batch):
    first = define(batch)
    second = define(batch, command=["false"])
    assert second.endswith("etm-job:2")
    assert "is unknown" in refusal(run, batch, "etm-other")
    assert "does not exist" in refusal(
        batch.submit_job, jobName="j", jobQueue="other", jobDefinition=first
    )
    batch.deregister_job_definition(jobDefinition=second)
    inactive = batch.describe_job_definitions(jobDefinitions=[second])["jobDefinitions"]
    assert [d["status"] for d in inactive] == ["INACTIVE"]
    assert "is INACTIVE" in refusal(run, batch, second)
    assert "is INACTIVE" in refusal(run, batch, "etm-job:2")
    # Without a revision: the latest active one.
    job = server.wait(run(batch, "etm-job"))
    assert job.definition["jobDefinitionArn"] == first and job.status == "SUCCEEDED"
    active = batch.describe_job_definitions(jobDefinitionName="etm-job", status="ACTIVE")
    assert [d["revision"] for d in active["jobDefinitions"]] == [1]
    assert "name:revision or ARN" in refusal(
        batch.deregister_job_definition, jobDefinition="etm-job"
    )


@pytest.mark.parametrize(
    "extra, problem",
    [
        ({"retryStrategy": {"attempts": 11}}, "between 1 and 10"),
        ({"retryStrategy": {"evaluateOnExit": [{"action": "EXIT"}]}}, "needs attempts"),
        ({"retryStrategy": {"attempts": 2, "evaluateOnExit": [{"action": "EXIT"}] * 6}},
         "at most 5"),
        ({"retryStrategy": {"attempts": 2, "evaluateOnExit": [
            {"action": "RETRY", "onStatusReason": "Host EC2 (instance*"}]}},
         "not a valid pattern"),
        ({"retryStrategy": {"attempts": 2, "evaluateOnExit": [
            {"action": "RETRY", "onExitCode": "1?"}]}}, "not a valid pattern"),
        ({"timeout": {"attemptDurationSeconds": 59}}, "at least 60"),
        ({"container": {"environment": [{"name": "AWS_BATCH_JOB_ID", "value": "x"}]}},
         "AWS_BATCH is reserved"),
        ({"container": {"resourceRequirements": [{"type": "VCPU", "value": "0.5"},
                                                  {"type": "MEMORY", "value": "512"}]}},
         "whole vCPUs"),
        ({"container": {"resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                  {"type": "MEMORY", "value": "3"}]}},
         "at least 4"),
        ({"container": {"resourceRequirements": [{"type": "VCPU", "value": "1"}]}},
         "VCPU and MEMORY are required"),
        ({"container": {"image": "etm test"}}, "does not match"),
        ({"container": {"volumes": []}}, "the stand-in does not run containerProperties"),
        ({"platformCapabilities": ["FARGATE"]}, "the stand-in's queue is EC2"),
    ],
)  # fmt: skip
def test_job_definitions_batch_refuses(server, batch, extra, problem):
    assert problem in refusal(define, batch, **extra)


def test_a_job_walks_the_states_and_reports_its_container(server, batch, tmp_path):
    definition = define(batch, command=["sh", "-c", "echo attempt $AWS_BATCH_JOB_ATTEMPT; exit 0"])
    first = run(batch, definition, name="first")
    second = run(batch, definition, name="second", dependsOn=[{"jobId": first}])
    assert server.wait(second).states == [
        "SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"
    ]  # fmt: skip
    assert server.jobs[first].states == [
        "SUBMITTED", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"
    ]  # fmt: skip
    job = described(batch, second)
    assert job["createdAt"] <= job["startedAt"] <= job["stoppedAt"] <= time.time() * 1000
    assert job["statusReason"] == "Essential container in task exited"
    assert job["container"]["exitCode"] == 0 and job["jobDefinition"] == definition
    assert job["dependsOn"] == [{"jobId": first}]
    (attempt,) = job["attempts"]
    assert attempt["container"]["exitCode"] == 0
    assert attempt["statusReason"] == "Essential container in task exited"
    assert server.jobs[second].log.read_text() == "attempt 1\n"
    # A dependency that fails fails its dependents.
    failing = run(batch, define(batch, name="failing", command=["false"]))
    after = run(batch, definition, name="after", dependsOn=[{"jobId": failing}])
    assert server.wait(after).status_reason == "Dependent Job failed"
    assert server.jobs[after].attempts == []


def test_containers_get_batch_environment_role_credentials_and_recorded_limits(server, batch):
    fetch = (
        "import json, os, urllib.request; "
        "uri = os.environ['AWS_CONTAINER_CREDENTIALS_FULL_URI']; "
        "print(json.load(urllib.request.urlopen(uri))['AccessKeyId']); "
        "print(sorted(k for k in os.environ if k.startswith('AWS')))"
    )
    definition = define(
        batch, command=["python3", "-c", fetch],
        container={"privileged": True, "user": "1000", "environment": [
            {"name": "ETM", "value": "1"}]},
    )  # fmt: skip
    job = server.wait(run(batch, definition))
    assert job.status == "SUCCEEDED" and server.credential_reads == 1
    lines = job.log.read_text().splitlines()
    assert lines[0] == ROLE["AccessKeyId"]
    assert lines[1] == str(sorted([
        "AWS_BATCH_CE_NAME", "AWS_BATCH_JOB_ATTEMPT", "AWS_BATCH_JOB_ID", "AWS_BATCH_JQ_NAME",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_REGION",
    ]))  # fmt: skip
    (attempt,) = job.attempts
    assert attempt.args == [
        "--cpus", "2", "--cpu-shares", "2048", "--memory", "4096m", "--memory-swap", "4096m",
        "--user", "1000", "--privileged",
    ]  # fmt: skip
    assert attempt.environment["ETM"] == "1" and attempt.environment["AWS_REGION"] == "us-east-1"
    plain = server.wait(run(batch, define(batch, name="plain")))
    assert "--privileged" not in plain.attempts[0].args and "--user" not in plain.attempts[0].args


def test_retry_strategy_retries_until_an_exit_rule_or_the_last_attempt(server, batch):
    fail = define(batch, command=["sh", "-c", "exit $((2 + AWS_BATCH_JOB_ATTEMPT))"])
    # No rule matches: retried up to attempts.
    job = server.wait(run(batch, fail, retryStrategy={"attempts": 3}))
    assert [a.exit_code for a in job.attempts] == [3, 4, 5] and job.status == "FAILED"
    assert job.states.count("RUNNABLE") == 3
    described_attempts = described(batch, job.id)["attempts"]
    assert [a["container"]["exitCode"] for a in described_attempts] == [3, 4, 5]
    # The first matching rule decides, in order; actions in any case.
    rules = [
        {"onExitCode": "4", "action": "exit"},
        {"onExitCode": "*", "onStatusReason": "Essential*", "action": "RETRY"},
    ]
    job = server.wait(run(batch, fail, retryStrategy={"attempts": 5, "evaluateOnExit": rules}))
    assert [a.exit_code for a in job.attempts] == [3, 4]
    # The definition's strategy applies unless SubmitJob gives one.
    once = define(batch, name="once", command=["false"], retryStrategy={"attempts": 2})
    assert len(server.wait(run(batch, once)).attempts) == 2
    assert len(server.wait(run(batch, once, retryStrategy={"attempts": 1})).attempts) == 1


def test_a_lost_spot_instance_ends_the_attempt_without_exit_code_and_the_strategy_decides(
    server, batch
):
    # The first attempt sleeps until EC2 takes its instance; the second succeeds.
    definition = define(
        batch, command=["sh", "-c", "test $AWS_BATCH_JOB_ATTEMPT = 1 && exec sleep 30; exit 0"]
    )
    spot = server.reclaim("tile6-*", attempt=1, after=0.2)
    unused = server.reclaim("tile6-*", attempt=1)
    retry = {"attempts": 2, "evaluateOnExit": [
        {"onStatusReason": "Host EC2*", "action": "RETRY"},
        {"onReason": "*", "action": "EXIT"},
    ]}  # fmt: skip
    job = server.wait(run(batch, definition, name="tile6-2020", retryStrategy=retry))
    assert (spot.job, unused.job) == (job, None)
    assert job.status == "SUCCEEDED" and job.states.count("RUNNABLE") == 2
    lost, second = described(batch, job.id)["attempts"]
    assert lost == {
        "container": {"logStreamName": job.stream},
        "startedAt": job.attempts[0].started_at, "stoppedAt": job.attempts[0].stopped_at,
        "statusReason": "Host EC2 (instance i-0123456789abcdef0) terminated.",
    }  # fmt: skip
    assert second["container"]["exitCode"] == 0
    # Without a retry strategy the job fails as its instance went: without an exit code.
    server.reclaim("tile7-*")
    failed = server.wait(run(batch, define(batch, command=["sleep", "30"]), name="tile7-2020"))
    assert (failed.status, failed.status_reason) == ("FAILED", SPOT_LOST)
    assert "exitCode" not in described(batch, failed.id)["container"]


def test_terminate_stops_a_running_container_and_is_not_retried(server, batch, tmp_path):
    pid = tmp_path / "pid"
    definition = define(batch, command=["sh", "-c", f"echo $$ > {pid}; exec sleep 60"])
    job_id = run(batch, definition, retryStrategy={"attempts": 3})
    server.wait(job_id, "RUNNING")
    deadline = time.monotonic() + 10
    while not pid.exists() or not pid.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    batch.terminate_job(jobId=job_id, reason="terminated by snakemake")
    job = server.wait(job_id, timeout=10)
    assert time.monotonic() - started < 5
    assert job.status == "FAILED" and job.status_reason == "terminated by snakemake"
    assert len(job.attempts) == 1 and job.exit_code == 143  # SIGTERM, as containers report it
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid.read_text()), 0)
    summary = described(batch, job_id)
    assert summary["isTerminated"] is True and "isCancelled" not in summary
    # Terminating a finished job changes nothing.
    batch.terminate_job(jobId=job_id, reason="again")
    assert described(batch, job_id)["statusReason"] == "terminated by snakemake"


def test_cancel_stops_only_jobs_not_yet_starting(server, batch):
    definition = define(batch, command=["sleep", "30"])
    running = run(batch, definition)
    server.wait(running, "RUNNING")
    batch.cancel_job(jobId=running, reason="cancelled")
    time.sleep(0.3)
    assert described(batch, running)["status"] == "RUNNING"
    server.hold()
    waiting = run(batch, definition)
    server.wait(waiting, "RUNNABLE")
    batch.cancel_job(jobId=waiting, reason="not needed")
    job = described(batch, waiting)
    assert (job["status"], job["statusReason"], job["isCancelled"]) == (
        "FAILED", "not needed", True
    )  # fmt: skip
    assert job["attempts"] == []
    batch.terminate_job(jobId=running, reason="stop")
    assert server.wait(running).status == "FAILED"


def test_a_held_queue_keeps_jobs_runnable_until_released(server, batch):
    definition = define(batch)
    server.hold()
    job_id = run(batch, definition)
    server.wait(job_id, "RUNNABLE")
    time.sleep(0.5)
    job = described(batch, job_id)
    assert (job["status"], job["statusReason"]) == ("RUNNABLE", NO_CAPACITY)
    assert "startedAt" not in job and job["attempts"] == []
    server.release()
    assert server.wait(job_id).status == "SUCCEEDED"
    assert "statusReason" in described(batch, job_id)


def test_a_job_no_instance_can_hold_stays_runnable_saying_so(server, batch):
    big = define(batch, container={"resourceRequirements": [
        {"type": "VCPU", "value": "16"}, {"type": "MEMORY", "value": "4096"}]})  # fmt: skip
    job_id = run(batch, big)
    server.wait(job_id, "RUNNABLE")
    time.sleep(0.3)
    assert described(batch, job_id)["statusReason"] == TOO_BIG
    assert server.refused == []


def test_slots_cap_the_containers_at_once(server, batch, tmp_path):
    definition = define(batch, command=["sleep", "1"])
    ids = [run(batch, definition, name=f"job{i}") for i in range(3)]
    server.wait(ids[1], "RUNNING")
    time.sleep(0.3)
    assert [server.jobs[i].status for i in ids] == ["RUNNING", "RUNNING", "RUNNABLE"]
    assert server.wait(ids[2], timeout=10).status == "SUCCEEDED"


def test_list_jobs_by_status_and_name_prefix_page_by_page(server, batch):
    definition = define(batch, command=["sleep", "30"])
    server.hold()
    run_id = "r0a1b2c3"
    ids = []
    for i in range(5):
        ids.append(run(batch, definition, name=f"etm-{run_id}-{i}"))
        time.sleep(0.005)  # createdAt is in milliseconds
    other = run(batch, definition, name="etm-other-0")
    for job_id in [*ids, other]:
        server.wait(job_id, "RUNNABLE")
    # Without a status nor filters, only RUNNING jobs.
    assert batch.list_jobs(jobQueue=QUEUE)["jobSummaryList"] == []
    runnable = batch.list_jobs(jobQueue="etm", jobStatus="RUNNABLE")["jobSummaryList"]
    assert len(runnable) == 6
    pages = batch.get_paginator("list_jobs").paginate(
        jobQueue=QUEUE, filters=[{"name": "JOB_NAME", "values": [f"ETM-{run_id}-*"]}],
        PaginationConfig={"PageSize": 2},
    )  # fmt: skip
    listed = [[s["jobId"] for s in page["jobSummaryList"]] for page in pages]
    assert [len(page) for page in listed] == [2, 2, 1]
    assert sum(listed, []) == ids[::-1]  # the most recent first
    exact = batch.list_jobs(
        jobQueue=QUEUE, filters=[{"name": "JOB_NAME", "values": ["etm-other-0"]}]
    )
    assert [s["jobId"] for s in exact["jobSummaryList"]] == [other]
    middle = server.jobs[ids[2]].created_at
    after = [{"name": "AFTER_CREATED_AT", "values": [str(middle)]}]
    before = [{"name": "BEFORE_CREATED_AT", "values": [str(middle)]}]
    later = {s["jobId"] for s in batch.list_jobs(jobQueue=QUEUE, filters=after)["jobSummaryList"]}
    earlier = {
        s["jobId"] for s in batch.list_jobs(jobQueue=QUEUE, filters=before)["jobSummaryList"]
    }
    assert set(ids[:2]) <= earlier and set(ids[3:]) <= later and ids[2] not in later | earlier
    assert "only one filter" in refusal(batch.list_jobs, jobQueue=QUEUE, filters=after + before)
    assert "between 1 and 100" in refusal(
        batch.list_jobs, jobQueue=QUEUE, filters=after, maxResults=101
    )
    assert "one of jobQueue" in refusal(batch.list_jobs)
    for job_id in [*ids, other]:
        batch.cancel_job(jobId=job_id, reason="listed")


def test_operations_the_stand_in_does_not_answer_are_refused_by_name(server, batch):
    message = refusal(batch.describe_job_queues)
    assert message == "the stand-in does not answer /v1/describejobqueues"
    assert server.refused == [message]


def test_a_command_that_cannot_start_fails_the_attempt_before_running(server, batch):
    definition = define(batch, command=["no-such-command"])
    retry = {"attempts": 2, "evaluateOnExit": [
        {"onStatusReason": "Task failed to start", "action": "RETRY"}]}  # fmt: skip
    job = server.wait(run(batch, definition, retryStrategy=retry))
    assert job.states.count("STARTING") == 2 and "RUNNING" not in job.states
    (first, _) = described(batch, job.id)["attempts"]
    assert first["statusReason"] == "Task failed to start"
    assert first["container"]["reason"].startswith("CannotCreateContainerError: ")
    assert "exitCode" not in first["container"] and "startedAt" not in first


@pytest.mark.slow
def test_an_attempt_over_its_timeout_is_stopped_and_not_retried(server, batch):
    definition = define(batch, command=["sleep", "90"], timeout={"attemptDurationSeconds": 60})
    job = server.wait(run(batch, definition, retryStrategy={"attempts": 2}), timeout=80)
    assert (job.status, job.status_reason, len(job.attempts)) == ("FAILED", TIMED_OUT, 1)


@pytest.mark.slow
def test_podman_runs_the_container_within_its_limits_and_kills_it_when_asked(tmp_path):
    from image import base_image, environment, podman

    image = base_image()
    server = BatchServer(["podman"], environment(), ROLE, "us-east-1", tmp_path, stop_seconds=2)
    batch = client(server)
    try:
        probe = (
            "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/memory/memory.limit_in_bytes"
            " 2>/dev/null || cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.max; id -u;"
            " grep CapEff /proc/self/status; python3 -c 'import urllib.request, os;"
            ' urllib.request.urlopen(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"])\''
        )
        definition = define(batch, command=["sh", "-c", probe], container={"image": image})
        job = server.wait(run(batch, definition), timeout=120)
        assert job.status == "SUCCEEDED", job.log.read_text()
        output = job.log.read_text().split()
        assert output[:3] == ["200000", str(4096 * 1024 * 1024), "0"]  # 2 vCPUs, 4 GiB, root
        assert output[4] != "000001ffffffffff"  # not privileged
        assert server.credential_reads == 1
        asked = define(
            batch, name="asked", command=["sh", "-c", "id -u; grep CapEff /proc/self/status"],
            container={"image": image, "user": "65534", "privileged": True},
        )  # fmt: skip
        job = server.wait(run(batch, asked), timeout=120)
        assert job.log.read_text().split()[0] == "65534" and "--privileged" in job.attempts[0].args
        # Over its memory, the kernel kills it: exit code 137, and ECS's reason.
        hungry = define(
            batch, name="hungry", command=["python3", "-c", "b = bytearray(200 << 20)"],
            container={"image": image, "resourceRequirements": [
                {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}]},
        )  # fmt: skip
        job = server.wait(run(batch, hungry), timeout=60)
        assert (job.exit_code, job.attempts[0].reason) == (137, OUT_OF_MEMORY)
        # A missing image cannot be pulled: the attempt fails to start.
        missing = define(batch, name="missing", container={"image": "localhost/etm-none:0"})
        job = server.wait(run(batch, missing), timeout=60)
        assert job.attempts[0].reason.startswith("CannotPullContainerError: ")
        # Terminated and reclaimed containers are gone.
        sleeper = define(batch, name="sleeper", command=["sleep", "60"], container={"image": image})
        server.reclaim("spot-lost")
        lost = server.wait(run(batch, sleeper, name="spot-lost"), timeout=60)
        assert (lost.status_reason, lost.exit_code) == (SPOT_LOST, None)
        job_id = run(batch, sleeper, name="terminated")
        server.wait(job_id, "RUNNING", timeout=60)
        batch.terminate_job(jobId=job_id, reason="terminated by snakemake")
        job = server.wait(job_id, timeout=30)
        assert job.status_reason == "terminated by snakemake"
        listed = podman("ps", "--all", "--format", "{{.Names}}").stdout
        assert not any(a.container in listed for j in server.jobs.values() for a in j.attempts)
    finally:
        server.stop()


def test_the_role_credentials_are_served_to_containers_only(server):
    with urllib.request.urlopen(server.endpoint + "/v2/credentials/etm-batch-job") as answer:
        assert json.load(answer)["Token"] == ROLE["Token"]
    assert server.credential_reads == 1
