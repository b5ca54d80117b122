"""Runs announce how they ended: to an SNS topic (moto, loopback) and to a webhook receiver."""

from __future__ import annotations

import base64
import json

import pytest
from conftest import JULY, TILE5, TILE6
from s3server import S3Server, assert_no_credentials
from webhookserver import WebhookReceiver

pytestmark = pytest.mark.slow  # end-to-end runs on S3 or several runs each (make test-fast)


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
    assert "etm: notifications of how the run ended: 0 sent, 2 failed" in result.stderr
    no_secrets(result.stderr)


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def test_no_secret_of_the_config_the_environment_or_a_url_is_written_anywhere(notified):
    # The config holds a webhook URL with a user, a password and a token; the environment
    # holds the AWS keys (fake ones, for the loopback servers). A / and a # in the password:
    # a URL parser ended the authority at the / (host "etm-user", port "PWA1"), and the
    # notification failed with "Port could not be cast to integer value as 'PWA1'".
    receiver = WebhookReceiver(status=500, credentials="etm-user:PWA1/PWB2#PWC3")
    notified.config["notify"] = {"webhook_url": receiver.url}
    result = notified.snakemake()
    receiver.stop()
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert f"etm warning: notification failed: webhook {receiver.host}: Internal Server Error" in (
        lines
    )
    assert "etm: notifications of how the run ended: 0 sent, 1 failed" in lines
    # Sent whole, as basic authentication only.
    assert receiver.authorizations == [basic("etm-user:PWA1/PWB2#PWC3")]
    config = notified.root / "test.yaml"  # the user's own file, not written by the run
    written = [
        path for path in notified.root.rglob("*")
        if path.is_file() and path != config and notified.chips_root not in path.parents
    ]  # fmt: skip
    assert len(written) > 30  # logs, reports, COGs, Items, Snakemake's own records
    texts = [path.read_bytes().decode(errors="replace") for path in written]
    for secret in ("PWA1", "PWB2", "PWC3", "etm-user"):
        assert not [p for p, text in zip(written, texts, strict=True) if secret in text]
        assert secret not in result.stdout + result.stderr
    no_secrets(*texts, result.stdout, result.stderr)


@pytest.fixture
def one_month(workspace):
    """The workspace sample, one product and one month: a short run."""
    workspace.config.update(products=["etasw"], start_year=2020, end_year=2020)
    return workspace


def test_a_webhook_that_redirects_elsewhere_gets_nothing_followed_and_counts_as_failed(one_month):
    # urllib followed a 302 to any host, as a GET without the message and with the
    # Authorization header, and the notification was reported sent.
    elsewhere = WebhookReceiver()
    hook = WebhookReceiver(
        status=302, credentials="etm-user:URL-PASSWORD-9", location=elsewhere.url
    )
    one_month.config["notify"] = {"webhook_url": hook.url}
    result = one_month.snakemake()
    hook.stop()
    elsewhere.stop()
    assert result.returncode == 0, result.stderr
    assert hook.authorizations == [basic("etm-user:URL-PASSWORD-9")]
    assert hook.bodies[0]["status"] == "success"
    assert elsewhere.bodies == elsewhere.authorizations == []
    lines = result.stderr.splitlines()
    assert [line for line in lines if line.startswith("etm warning:")] == [
        f"etm warning: notification failed: webhook {hook.host}: Found (302): a redirect to "
        f"{elsewhere.host}, not followed; set webhook_url to the address it points to"
    ]
    assert "etm: notifications of how the run ended: 0 sent, 1 failed" in lines
    no_secrets(result.stdout, result.stderr)
    assert "URL-PASSWORD-9" not in result.stdout + result.stderr
