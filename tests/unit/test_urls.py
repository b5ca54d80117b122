"""A URL's user and password are whatever lies before its authority's last @."""

import base64

import pytest

from etm.urls import credentials, gdal_options, masked_url, request, without_userinfo


@pytest.mark.parametrize(
    "url, bare, found",
    [
        ("https://hooks.example.org/T0/TOKEN", "https://hooks.example.org/T0/TOKEN", None),
        ("https://token@hooks.example.org/T0", "https://hooks.example.org/T0", ("token", "")),
        ("http://user:EP/SECRET2@127.0.0.1:9/x", "http://127.0.0.1:9/x", ("user", "EP/SECRET2")),
        ("http://u:p#w?q@h:8/p?a=1#f", "http://h:8/p?a=1#f", ("u", "p#w?q")),
        ("http://u:p@w@h/p", "http://h/p", ("u", "p@w")),
        ("http://u%3Ax:p%40ss@h/", "http://h/", ("u:x", "p@ss")),
        # Without a scheme, nothing is taken off (a local path, bucket/key)...
        ("/data/user@host/out", "/data/user@host/out", None),
        ("user:PW@hooks.example.org/T0", "user:PW@hooks.example.org/T0", None),
    ],
)  # fmt: skip
def test_the_user_and_password_end_at_the_last_at_sign(url, bare, found):
    assert without_userinfo(url) == bare
    assert credentials(url) == found


def test_shown_without_them_scheme_or_not():
    # ...but shown masked: what lies before an @ may be a password.
    assert masked_url("user:PW@hooks.example.org/T0") == "***@hooks.example.org/T0"
    assert masked_url("http://user:EP/SECRET2@127.0.0.1:9/x") == "http://***@127.0.0.1:9/x"
    assert masked_url("https://hooks.example.org/x") == "https://hooks.example.org/x"


def test_requests_send_them_as_basic_authentication_only():
    sent = request("https://user:EP/SE%2FCRET#2@hooks.example.org/T0", method="POST")
    assert sent.full_url == "https://hooks.example.org/T0" and sent.host == "hooks.example.org"
    pair = base64.b64decode(sent.get_header("Authorization").removeprefix("Basic "))
    assert pair == b"user:EP/SE/CRET#2"
    assert not request("https://hooks.example.org/T0").has_header("Authorization")
    assert gdal_options("https://u:p/w@h/out") == {
        "GDAL_HTTP_AUTH": "BASIC", "GDAL_HTTP_USERPWD": "u:p/w",
    }  # fmt: skip
    assert gdal_options("https://h/out") == gdal_options("/data/out") == {}
