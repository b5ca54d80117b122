"""Runs announce how they ended: to an SNS topic (moto, loopback) and to a webhook receiver."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import JULY, TILE5, TILE6
from s3server import S3Server, assert_no_credentials

pytestmark = pytest.mark.slow  # end-to-end runs on S3 or several runs each (make test-fast)


class WebhookReceiver:
    """A loopback HTTP server recording the JSON bodies POSTed to it, answering ``status``."""

    def __init__(self, status: int = 200, credentials: str = ""):
        self.bodies: list[dict] = []
        self.authorizations: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                receiver.authorizations.append(self.headers.get("Authorization"))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        host, port = self._server.server_address[:2]
        self.host = f"{host}:{port}"
        user = f"{credentials}@" if credentials else ""
        self.url = f"http://{user}{host}:{port}/hooks/T000/SECRET-TOKEN"

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def notified(workspace, monkeypatch):
    """The workspace with notify: an SNS topic (delivering to an SQS queue) and a webhook."""
    server, webhook = S3Server(), WebhookReceiver()
    for name, value in server.environment.items():
        monkeypatch.setenv(name, value)
    import boto3

    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="etm-runs")["TopicArn"]
    queue = sqs.create_queue(QueueName="etm-runs")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])

    def sns_messages() -> list[dict]:
        answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [json.loads(m["Body"]) for m in answer.get("Messages", ())]

    workspace.config["notify"] = {"sns_topic_arn": topic, "webhook_url": webhook.url}
    workspace.sns_messages = sns_messages
    workspace.webhook = webhook
    yield workspace
    webhook.stop()
    server.stop()


def no_secrets(*texts: str) -> None:
    """No AWS credential, nor the webhook URL's token."""
    assert_no_credentials(*texts)
    assert not [text for text in texts if "SECRET-TOKEN" in text]


def test_failed_run_announces_each_failed_job_with_its_log_and_the_missing_chips(notified):
    notified.config["missing_chips"] = "skip"
    notified.chip(TILE5, "chip45.4N-114.8E", "netet", 2021, JULY).unlink()
    bad = notified.chip(TILE6, "chip43.4N-102.8E", "etasw", 2020, JULY)
    bad.write_bytes(bad.read_bytes()[:1000])  # an interrupted upload
    result = notified.snakemake("--keep-going")
    assert result.returncode == 1, result.stderr

    [webhook] = notified.webhook.bodies
    log = str(
        notified.logs.relative_to(notified.root) / "mosaic_tile/r50.0_tile6/2020/etasw_202007.log"
    )
    assert webhook["status"] == "error" and webhook["missing_chips"] == 1
    assert webhook["failed_jobs"] == [{"job": f"mosaic_tile {TILE6} etasw 2020-07", "logs": [log]}]
    assert f"failed: mosaic_tile {TILE6} etasw 2020-07 (log: {log})" in webhook["text"]
    [sns] = notified.sns_messages()
    assert sns["Subject"] == "etm failed: 1 jobs, out"
    assert sns["Message"] == webhook["text"]
    assert (notified.root / log).read_text().count("cannot be read in full") == 1
    no_secrets(json.dumps(webhook), result.stdout, result.stderr)


def test_finished_run_announces_published_cogs_and_skipped_months(notified):
    notified.config["missing_chips"] = "skip"
    notified.chip(TILE5, "chip45.4N-114.8E", "netet", 2021, JULY).unlink()
    result = notified.snakemake()
    assert result.returncode == 0, result.stderr
    [webhook] = notified.webhook.bodies
    published = len(notified.expected_cogs({(TILE5, "netet", 2021, JULY)}))
    assert webhook["published_cogs"] == published == 10
    assert webhook["skipped_months"] == [f"{TILE5} netet 2021-07"]
    assert webhook["missing_chips"] == 1
    [sns] = notified.sns_messages()
    assert sns["Message"] == webhook["text"]
    assert sns["Message"].startswith("etm run for out finished: 10 COGs published and up to date")


@pytest.mark.parametrize("outcome", ["finished", "failed"])
def test_a_failing_notifier_never_changes_the_exit_status(notified, outcome):
    # A webhook answering 500, and an SNS topic that does not exist.
    broken = WebhookReceiver(status=500)
    notified.config["notify"] = {
        "webhook_url": broken.url,
        "sns_topic_arn": "arn:aws:sns:us-east-1:123456789012:no-such-topic",
    }
    if outcome == "failed":
        bad = notified.chip(TILE6, "chip43.4N-102.8E", "etasw", 2020, JULY)
        bad.write_bytes(bad.read_bytes()[:1000])
    result = notified.snakemake()
    broken.stop()
    assert result.returncode == (0 if outcome == "finished" else 1), result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("etm warning:")]
    assert len(warnings) == 2, result.stderr
    assert any("notification failed: SNS topic" in line and "NotFound" in line for line in warnings)
    assert (
        f"etm warning: notification failed: webhook {broken.host}: Internal Server Error"
        in warnings
    )
    assert len(broken.bodies) == 1
    no_secrets(result.stderr)


def test_no_secret_of_the_config_the_environment_or_a_url_is_written_anywhere(notified):
    # The config holds a webhook URL with a user, a password and a token; the environment
    # holds the AWS keys (fake ones, for the loopback servers).
    receiver = WebhookReceiver(status=500, credentials="etm-user:URL-PASSWORD-9")
    notified.config["notify"] = {"webhook_url": receiver.url}
    result = notified.snakemake()
    receiver.stop()
    assert result.returncode == 0, result.stderr
    assert (
        f"etm warning: notification failed: webhook {receiver.host}: Internal Server Error"
        in result.stderr.splitlines()
    )
    expected = "Basic " + base64.b64encode(b"etm-user:URL-PASSWORD-9").decode()
    assert receiver.authorizations == [expected]  # sent as basic authentication only
    config = notified.root / "test.yaml"  # the user's own file, not written by the run
    written = [
        path for path in notified.root.rglob("*")
        if path.is_file() and path != config and notified.chips_root not in path.parents
    ]  # fmt: skip
    assert len(written) > 30  # logs, reports, COGs, Items, Snakemake's own records
    texts = [path.read_bytes().decode(errors="replace") for path in written]
    for secret in ("URL-PASSWORD-9", "etm-user"):
        assert not [p for p, text in zip(written, texts, strict=True) if secret in text]
        assert secret not in result.stdout + result.stderr
    no_secrets(*texts, result.stdout, result.stderr)
