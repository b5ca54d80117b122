"""The IAM policies of docs/aws allow every AWS call the code makes (docs/aws.md)."""

import fnmatch
import json
import re
from pathlib import Path

import botocore.session
from botocore import xform_name

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "docs" / "aws"
#: Our code: etm and both plugins (the subclasses keep only these of their bases' calls).
OURS = ["etm", "snakemake_storage_plugin_etm_s3", "snakemake_executor_plugin_etm_batch"]
#: What the bases our plugins subclass call, in what our subclasses keep of them: the S3
#: plugin's existence, time and size checks (HeadObject), downloads of outputs and uploads
#: (GetObject, PutObject with its multipart parts), removals (DeleteObject); the Batch plugin's
#: termination of jobs on cancel (TerminateJob) and removal of job definitions.
INHERITED = {"s3": {"HeadObject", "GetObject", "PutObject", "DeleteObject",
                    "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"},
             "batch": {"TerminateJob", "DeregisterJobDefinition"}}  # fmt: skip
#: The IAM action an S3 call needs, where it is not the call's own name.
S3_ACTIONS = {
    "HeadObject": "s3:GetObject", "ListObjectsV2": "s3:ListBucket",
    "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    # A multi-object delete needs s3:DeleteObject on each key; IAM has no s3:DeleteObjects.
    "DeleteObjects": "s3:DeleteObject",
}  # fmt: skip


def called(service: str) -> set[str]:
    """The operations of a service our code calls, by client method name or paginator."""
    model = botocore.session.get_session().get_service_model(service)
    methods = {xform_name(name): name for name in model.operation_names}
    text = "\n".join(p.read_text() for folder in OURS for p in (REPO / folder).rglob("*.py"))
    found = set(re.findall(r"\.(\w+)\(", text)) | set(re.findall(r"get_paginator\(\"(\w+)\"", text))
    return {methods[name] for name in found if name in methods} | INHERITED.get(service, set())


def allowed(policy: str) -> set[str]:
    statements = json.loads((POLICIES / policy).read_text())["Statement"]
    actions = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        found = statement["Action"]
        actions |= {found} if isinstance(found, str) else set(found)
    return actions


def needs(service: str, operation: str) -> str:
    if service == "s3":
        return S3_ACTIONS.get(operation, f"s3:{operation}")
    return f"{service}:{operation}"


def test_the_run_policy_allows_every_call_of_the_main_process():
    actions = allowed("run-policy.json")
    calls = {(service, op) for service in ("s3", "batch", "sns") for op in called(service)}
    assert ("batch", "ListJobs") in calls and ("sns", "Publish") in calls
    missing = {
        needs(service, op)
        for service, op in calls
        if not any(fnmatch.fnmatch(needs(service, op), action) for action in actions)
    }
    assert not missing, missing
    # Tags on every job definition and job, and the job role passed to Batch.
    assert {"batch:TagResource", "iam:PassRole"} <= actions


def test_the_job_role_may_do_what_a_container_does_and_no_more():
    actions = allowed("job-role-policy.json")
    assert actions == {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    assert {needs("s3", op) for op in called("s3")} <= actions
