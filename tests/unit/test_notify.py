import base64
from http import HTTPStatus

import pytest
from webhookserver import WebhookReceiver

from etm import notify
from etm.notify import FailedJob, error_message, failed_jobs, send, success_message

SNAKEMAKE_LOG = """\
[Wed Nov 25 06:24:22 2026]
Error in rule mosaic_tile:
    message: None
    jobid: 1
    input: a.tif, b.tif
    output: out/tiles/r50.0_tile6/etasw/2020/etasw_202007.tif
    log: logs/mosaic_tile/r50.0_tile6/2020/etasw_202007.log (check log file(s) for error details)
Trying to restart job 1.
Error in rule mosaic_tile:
    jobid: 1
    log: logs/mosaic_tile/r50.0_tile6/2020/etasw_202007.log (check log file(s) for error details)
Error in rule mosaic_region:
    jobid: 7
    log: logs/mosaic_region/2021/netet_2021.log (check log file(s) for error details)
Error in rule stac_catalog:
    jobid: 9
Shutting down, this might take some time.
"""


def test_a_stored_log_is_read_without_snakemakes_note():
    log = (
        "Error in rule mosaic_tile:\n    log: s3://w/logs/mosaic_tile/t6/2020/etasw_202007.log "
        "(send to storage), s3://w/x.json (send to storage)\n"
    )
    assert failed_jobs(log)[0].logs == ("s3://w/logs/mosaic_tile/t6/2020/etasw_202007.log",)


def test_the_failed_jobs_of_a_group_are_read_too():
    # A Batch container's: Snakemake indents its jobs' blocks under the group's.
    log = SNAKEMAKE_LOG.replace("\n", "\n    ").replace("\n    Error in group", "\nError in group")
    assert failed_jobs("Error in group tile_r50.0_tile6_2020-2021:\n    " + log) == failed_jobs(
        SNAKEMAKE_LOG
    )


def test_failed_jobs_are_read_once_each_from_snakemakes_log():
    jobs = failed_jobs(SNAKEMAKE_LOG)
    assert jobs == [
        FailedJob("mosaic_tile", ("logs/mosaic_tile/r50.0_tile6/2020/etasw_202007.log",)),
        FailedJob("mosaic_region", ("logs/mosaic_region/2021/netet_2021.log",)),
        FailedJob("stac_catalog", ()),
    ]
    assert [job.describe() for job in jobs] == [
        "mosaic_tile r50.0_tile6 etasw 2020-07",
        "mosaic_region region netet 2021",
        "stac_catalog",
    ]


def test_error_message_lists_each_failed_job_with_its_log():
    message = error_message("s3://ws-enduser/USA/TBD", failed_jobs(SNAKEMAKE_LOG), 3, ["x.log"])
    assert message.text.splitlines() == [
        "etm run for s3://ws-enduser/USA/TBD failed: 3 failed jobs, 3 chip files missing.",
        "failed: mosaic_tile r50.0_tile6 etasw 2020-07 "
        "(log: logs/mosaic_tile/r50.0_tile6/2020/etasw_202007.log)",
        "failed: mosaic_region region netet 2021 (log: logs/mosaic_region/2021/netet_2021.log)",
        "failed: stac_catalog (log: none)",
        "Snakemake log: x.log",
    ]
    assert len(message.subject) <= 100


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_webhook_redirect_is_followed_by_nothing_and_is_a_failure(status):
    elsewhere = WebhookReceiver()
    hook = WebhookReceiver(status=status, credentials="etm:PW/9#x", location=elsewhere.url)
    try:
        problems = send(success_message("out", 3, [], 0), None, hook.url)
    finally:
        hook.stop()
        elsewhere.stop()
    assert hook.authorizations == ["Basic " + base64.b64encode(b"etm:PW/9#x").decode()]
    assert elsewhere.bodies == []
    assert problems == [
        f"webhook {hook.host}: {HTTPStatus(status).phrase} ({status}): a redirect to "
        f"{elsewhere.host}, not followed; set webhook_url to the address it points to"
    ]


def test_a_webhook_answering_2xx_is_sent_and_any_other_answer_is_a_failure():
    sent, refused = WebhookReceiver(status=204), WebhookReceiver(status=404)
    message = success_message("out", 3, [], 0)
    try:
        assert send(message, None, sent.url) == []
        assert send(message, None, refused.url) == [f"webhook {refused.host}: Not Found"]
    finally:
        sent.stop()
        refused.stop()
    assert sent.bodies[0]["published_cogs"] == 3


def test_a_failure_reason_echoing_the_authorization_token_does_not_show_it():
    from etm.notify import redacted

    url = "https://bob:S3C/RE#T@hooks.example.com/x"
    token = base64.b64encode(b"bob:S3C/RE#T").decode()
    assert redacted(f"Unauthorized for Basic {token}", url) == "Unauthorized for Basic ***"


def test_a_webhook_that_answers_too_slowly_is_a_failure_once_its_deadline_passes(monkeypatch):
    monkeypatch.setattr(notify, "WEBHOOK_DEADLINE_S", 2)  # 30 s in use
    hook = WebhookReceiver(drip=0.5)  # each read answered well within its 10 s
    try:
        problems = send(success_message("out", 3, [], 0), None, hook.url)
    finally:
        hook.stop()
    assert problems == [f"webhook {hook.host}: no whole answer within 2 s"]
