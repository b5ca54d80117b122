"""Error messages say one line, and never show a password, even one inside a URL boto3 quotes."""

import pytest

from etm.errors import StorageError, one_line, without_passwords


@pytest.mark.parametrize(
    "text, shown",
    [
        ('endpoint URL: "http://alice:pw@127.0.0.1:9/ws-out?list-type=2"',
         'endpoint URL: "http://***@127.0.0.1:9/ws-out?list-type=2"'),
        ("https://token@hooks.example.org/x and s3://bucket/key",
         "https://***@hooks.example.org/x and s3://bucket/key"),
        ("mail bob@example.org at http://host/path", "mail bob@example.org at http://host/path"),
        ("'http://u:p%40ss@h' 'http://v:q@h'", "'http://***@h' 'http://***@h'"),
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
