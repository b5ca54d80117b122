"""Announce how a run ended: one message to an SNS topic and/or a webhook.

:meth:`etm.run.MainProcess.end` (Snakemake's ``onsuccess``/``onerror``) sends it. Failed
jobs are read from Snakemake's own log of the run; which tile, product and period a job
built, from its log path (:data:`etm.plan.TILE_LOG`, :data:`etm.plan.REGION_LOG`). Sending
never raises: a notifier that fails is reported as a warning and never changes the run's
exit status.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import boto3

from etm.plan import REGION_LOG, TILE_LOG, Period
from etm.s3 import client_config
from etm.urls import basic_token, credentials, request, split_userinfo, without_userinfo

#: Seconds to wait for each read of a webhook's answer, and for the whole of it (a server
#: that sends a byte at a time would otherwise hold the run's end for hours).
WEBHOOK_TIMEOUT_S, WEBHOOK_DEADLINE_S = 10, 30
#: SNS subjects are at most 100 characters.
SUBJECT_LENGTH = 100

#: A failed job in Snakemake's log; a group's (a Batch container's) are indented.
ERROR_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)Error in rule (?P<rule>\w+):\n(?P<body>(?:(?P=indent)[ \t]+.*\n?)*)",
    re.MULTILINE,
)
LOG_LINE = re.compile(r"^\s+log: (?P<logs>.*?)(?: \(check log file\(s\) for error details\))?$")


def log_pattern(template: str) -> re.Pattern:
    """A job log template of etm.plan as a pattern whose groups are its fields."""
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")


#: What a mosaic job built, from its log path.
JOB_LOGS = (log_pattern(TILE_LOG), log_pattern(REGION_LOG))


@dataclass(frozen=True)
class FailedJob:
    """A job that failed (after its retries): its rule and log files."""

    rule: str
    logs: tuple[str, ...]

    def describe(self) -> str:
        """The rule, and the tile (or region), product and period of a mosaic job."""
        matches = (pattern.search(path) for pattern in JOB_LOGS for path in self.logs)
        built = next((found.groupdict() for found in matches if found), None)
        if built is None:
            return self.rule
        when = Period.parse(built["period"]).label
        return f"{self.rule} {built.get('tile', 'region')} {built['product']} {when}"


def failed_jobs(snakemake_log: str) -> list[FailedJob]:
    """Every failed job in Snakemake's log of a run, once each (retries repeat them).

    Parameters
    ----------
    snakemake_log : str
        The text of ``.snakemake/log/<time>.snakemake.log``.

    Returns
    -------
    list of FailedJob
    """
    jobs: dict[FailedJob, None] = {}
    for block in ERROR_BLOCK.finditer(snakemake_log):
        logs: tuple[str, ...] = ()
        for line in block["body"].splitlines():
            match = LOG_LINE.match(line)
            if match:
                # A stored log is followed by " (send to storage)".
                paths = (
                    path.strip().removesuffix(" (send to storage)")
                    for path in match["logs"].split(",")
                )
                logs = tuple(path for path in paths if path.endswith(".log"))
        jobs[FailedJob(block["rule"], logs)] = None
    return list(jobs)


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    summary: dict


def error_message(
    output: str, jobs: Sequence[FailedJob], missing: int, logs: Sequence[str]
) -> Message:
    """The message of a failed run.

    Parameters
    ----------
    output : str
        The output prefix, naming the run.
    jobs : sequence of FailedJob
    missing : int
        Chip files missing at the start of the run.
    logs : sequence of str
        Snakemake's log files of the run.
    """
    lines = [f"etm run for {output} failed: {len(jobs)} failed jobs, {missing} chip files missing."]
    lines += [f"failed: {job.describe()} (log: {', '.join(job.logs) or 'none'})" for job in jobs]
    lines.append(f"Snakemake log: {', '.join(logs)}")
    return Message(
        subject=f"etm failed: {len(jobs)} jobs, {output}"[:SUBJECT_LENGTH],
        text="\n".join(lines),
        summary={
            "status": "error",
            "output": output,
            "failed_jobs": [{"job": job.describe(), "logs": list(job.logs)} for job in jobs],
            "missing_chips": missing,
            "snakemake_logs": list(logs),
        },
    )


def success_message(output: str, published: int, skipped: Sequence[str], missing: int) -> Message:
    """The message of a run that finished.

    Parameters
    ----------
    output : str
        The output prefix.
    published : int
        COGs published (now or by earlier runs) under the prefix.
    skipped : sequence of str
        Tile-months left out for missing chips (``missing_chips: skip``), e.g.
        ``r50.0_tile6 etasw 2020-07``.
    missing : int
        Chip files missing.
    """
    text = (
        f"etm run for {output} finished: {published} COGs published and up to date, "
        f"{len(skipped)} tile-months skipped, {missing} chip files missing."
    )
    if skipped:
        text += "\nskipped: " + "; ".join(skipped)
    return Message(
        subject=f"etm finished: {published} COGs, {output}"[:SUBJECT_LENGTH],
        text=text,
        summary={
            "status": "success",
            "output": output,
            "published_cogs": published,
            "skipped_months": list(skipped),
            "missing_chips": missing,
        },
    )


def webhook_host(url: str) -> str:
    """A webhook as logs may name it: host and port only, never a user, password, path
    or query (they often hold a token)."""
    return urlsplit(without_userinfo(url)).netloc


def send(message: Message, sns_topic_arn: str | None, webhook_url: str | None) -> list[str]:
    """Send a message to the SNS topic and the webhook that are configured.

    The webhook receives JSON: ``text`` (as Slack and Teams incoming webhooks expect),
    ``subject`` and the message's summary fields. It must answer 2xx; a redirect is not
    followed (:class:`NoRedirects`).

    Returns
    -------
    list of str
        One line per notifier that failed; the webhook is named by its host only, since
        its path often holds a token.
    """
    problems = []
    if sns_topic_arn:
        try:
            region = sns_topic_arn.split(":")[3]
            sns = boto3.client("sns", region_name=region, config=client_config())
            sns.publish(TopicArn=sns_topic_arn, Subject=message.subject, Message=message.text)
        except Exception as error:  # a notifier never fails the run
            problems.append(f"SNS topic {sns_topic_arn}: {error}")
    if webhook_url:
        try:
            post_json(
                webhook_url, {"text": message.text, "subject": message.subject, **message.summary}
            )
        except Exception as error:  # a notifier never fails the run
            problems.append(f"webhook {webhook_host(webhook_url)}: {failure(error, webhook_url)}")
    return problems


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """Follow no redirect: urllib would follow a 301, 302 or 303 to any host as a GET
    without the message, sending the ``Authorization`` header there. The answer is then
    an :class:`urllib.error.HTTPError`, a failed notification."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_WEBHOOKS = urllib.request.build_opener(NoRedirects)


def post_json(url: str, document: dict) -> None:
    """POST JSON to a URL; a ``user:password@`` in it (:func:`etm.urls.split_userinfo`)
    is sent as basic authentication, never as part of the address.

    Raises
    ------
    urllib.error.URLError
        On an answer other than 2xx (:class:`urllib.error.HTTPError`, redirects included),
        or no answer.
    """
    headers = {"Content-Type": "application/json"}
    posted = request(url, data=json.dumps(document).encode(), headers=headers, method="POST")
    failed: list[BaseException] = []

    def post() -> None:
        try:
            with _WEBHOOKS.open(posted, timeout=WEBHOOK_TIMEOUT_S):
                pass
        except BaseException as error:  # raised below, in the caller's thread
            failed.append(error)

    sending = threading.Thread(target=post, name="etm-webhook", daemon=True)
    sending.start()
    sending.join(WEBHOOK_DEADLINE_S)
    if sending.is_alive():  # left behind: a daemon thread ends with the process
        raise TimeoutError(f"no whole answer within {WEBHOOK_DEADLINE_S} s")
    if failed:
        raise failed[0]


def failure(error: Exception, url: str) -> str:
    """Why a webhook failed, without the URL's user, password, path or query; a redirect
    is named by the host it pointed to."""
    reason = redacted(str(getattr(error, "reason", None) or error), url)
    if isinstance(error, urllib.error.HTTPError) and 300 <= error.code < 400:
        target = webhook_host(error.headers.get("Location") or "") or webhook_host(url)
        reason += (
            f" ({error.code}): a redirect to {target}, not followed; set webhook_url to the "
            "address it points to"
        )
    return reason


def redacted(text: str, url: str) -> str:
    """``text`` without the URL's user, password (also as the basic authentication token a
    server may echo), path or query, should it quote them."""
    _, userinfo, _ = split_userinfo(url)
    parts = urlsplit(without_userinfo(url))
    secrets = (url, userinfo, *(credentials(url) or ()), basic_token(url), parts.path, parts.query)
    for secret in secrets:
        if secret and len(secret) > 1:
            text = text.replace(secret, "***")
    return text
