"""Error messages say one line, and never show a password, even one inside a URL boto3 quotes."""

import io
import logging
import sys
import threading

import pytest
from snakemake.logging import ColorizingTextHandler

from etm.errors import MAX_LINE, StorageError, one_line, say, without_passwords


@pytest.mark.parametrize(
    "text, shown",
    [
        ('endpoint URL: "http://alice:pw@127.0.0.1:9/ws-out?list-type=2"',
         'endpoint URL: "http://***@127.0.0.1:9/ws-out?list-type=2"'),
        ("https://token@hooks.example.org/x and s3://bucket/key",
         "https://***@hooks.example.org/x and s3://bucket/key"),
        ("mail bob@example.org at http://host/path", "mail bob@example.org at http://host/path"),
        ("'http://u:p%40ss@h' 'http://v:q@h'", "'http://***@h' 'http://***@h'"),
        # A password with a /, # or @ as it is: the user and password end at the last @.
        ("Custom endpoint `http://user:EP/SECRET2@127.0.0.1:9` was not a valid URI",
         "Custom endpoint `http://***@127.0.0.1:9` was not a valid URI"),
        ("https://user:TS/PW9SECRET@h/out/items.ndjson: cannot be read",
         "https://***@h/out/items.ndjson: cannot be read"),
        ('"http://u:p#w@h/x?y=1#z", "http://u:p@w@h"', '"http://***@h/x?y=1#z", "http://***@h"'),
        ("s3://KEY:SE/CRET@ws-out/USA/", "s3://***@ws-out/USA/"),
        # A signed URL's or an endpoint's secrets in its query.
        ("'https://h/x?token=PWSECRET9/series/a.zarr' http://h/?x-amz-security-token=SE&a=1",
         "'https://h/x?token=***' http://h/?x-amz-security-token=***&a=1"),
        ("https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=ab12#f",
         "https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***#f"),
    ],
)  # fmt: skip
def test_passwords_in_urls_are_hidden_and_nothing_else(text, shown):
    assert without_passwords(text) == shown


def test_every_etm_error_hides_them():
    error = StorageError('cannot list s3://ws-out/: "http://alice:s3cret@10.0.0.1/ws-out"')
    assert "s3cret" not in str(error) and "http://***@10.0.0.1/ws-out" in str(error)


def test_an_error_message_spanning_lines_is_said_on_one():
    assert one_line(ValueError("Parameter validation failed:\n  Invalid bucket name")) == (
        "Parameter validation failed: Invalid bucket name"
    )


def test_a_line_too_long_to_read_keeps_its_start_and_end(capsys):
    line = f"config key 'enduser_cog_output': '{'x' * 300_000}/' is too long"
    say([line, "short"], prefix="etm error: ")
    first, second = capsys.readouterr().err.splitlines()
    assert len(first) < MAX_LINE + 100
    assert first.startswith("etm error: config key 'enduser_cog_output': 'xxx")
    assert first.endswith("xxx/' is too long")
    assert f"...[{len(line) - MAX_LINE:,} characters left out]..." in first
    assert second == "etm error: short"


class Terminal(io.StringIO):
    """stderr whose first write, Snakemake's message before its newline, waits to be let go."""

    def __init__(self):
        super().__init__()
        self.inside, self.go = threading.Event(), threading.Event()

    def write(self, text):
        written = super().write(text)
        if not self.inside.is_set():
            self.inside.set()
            self.go.wait(10)
        return written


def test_a_line_said_while_snakemake_writes_one_starts_a_line_of_its_own(monkeypatch):
    """A job's thread says its error while Snakemake's handler is between a message and its
    newline (what the workflow's jobs do: they run in threads of Snakemake's process)."""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    snakemake_log = logging.getLogger("snakemake.logging")
    monkeypatch.setattr(snakemake_log, "level", logging.INFO)
    handler = ColorizingTextHandler(nocolor=True, stream=terminal)
    snakemake_log.addHandler(handler)
    try:
        snakemake = threading.Thread(target=snakemake_log.info, args=["Select jobs to execute..."])
        snakemake.start()
        assert terminal.inside.wait(10)
        job = threading.Thread(target=say, args=[["chip x: is int16"], "etm error: "])
        job.start()
        job.join(0.5)  # it waits for Snakemake's line; without the lock it would write now
        terminal.go.set()
        snakemake.join(10)
        job.join(10)
    finally:
        snakemake_log.removeHandler(handler)
    assert terminal.getvalue().splitlines() == [
        "Select jobs to execute...",
        "etm error: chip x: is int16",
    ]


@pytest.mark.parametrize(
    "text, shown",
    [
        ("etm error: bob:S3CRET@example.invalid/pub: x", "etm error: ***@example.invalid/pub: x"),
        ("No such file: 'bob:S3C/RET#x@host:9/x'", "No such file: '***@host:9/x'"),
        ("//bob:S3CRET@host/x", "//***@host/x"),
        ("http://u:p/q@h/x and bob:pw@h", "http://***@h/x and ***@h"),
        ("at 12:30, mail me@x.org; s3://b/chip43.4N-102.8E/x", None),
    ],
)
def test_a_user_and_password_without_a_scheme_are_masked_too(text, shown):
    assert without_passwords(text) == (shown or text)
