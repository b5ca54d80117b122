"""URLs that may hold a user and password (``https://user:password@host/...``): where they
are, the URL shown without them, and requests that send them as basic authentication,
never as part of the address (:func:`request`, :func:`gdal_options`).

A URL parser ends the authority at its first ``/``, ``?`` or ``#``: a password written with
one of them as it is (``http://user:EP/SECRET2@host``) is read as host ``user`` and port
``EP``, and quoted in the parser's error. Here the user and password are whatever lies
before the authority's last ``@``.
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

if TYPE_CHECKING:  # imported where a request is made: etm.errors imports this module
    import urllib.request

#: A URL's scheme and ``://``.
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def split_userinfo(url: str) -> tuple[str, str | None, str]:
    """A URL cut around its user and password: ``(head, userinfo, tail)``, where ``url`` is
    ``head + userinfo + "@" + tail``, or ``(url, None, "")`` without them.

    They are whatever lies between ``scheme://`` (the start, for a URL written without a
    scheme) and the authority's last ``@``, taken as the last ``@`` of the URL: a password
    may hold ``/``, ``?``, ``#`` or ``@`` as they are. An ``@`` in a path is therefore
    written ``%40``.
    """
    scheme = SCHEME.match(url)
    start = scheme.end() if scheme else 0
    at = url.rfind("@", start)
    if at < 0:
        return url, None, ""
    return url[:start], url[start:at], url[at + 1 :]


def masked_url(url: str) -> str:
    """``url`` with its user and password (:func:`split_userinfo`) as ``***``."""
    head, userinfo, tail = split_userinfo(url)
    return url if userinfo is None else f"{head}***@{tail}"


def without_userinfo(url: str) -> str:
    """``url`` without its user and password, and their ``@``; a path without a scheme (a
    local file, ``bucket/key``) as it is."""
    head, userinfo, tail = split_userinfo(url)
    return head + tail if userinfo is not None and head else url


def credentials(url: str) -> tuple[str, str] | None:
    """A URL's user and password, percent-decoded; None without them, or without a scheme
    (a local file, ``bucket/key``)."""
    head, userinfo, _ = split_userinfo(url)
    if userinfo is None or not head:
        return None
    user, _, password = userinfo.partition(":")
    return unquote(user), unquote(password)


def request(url: str, **options) -> urllib.request.Request:
    """A urllib request of ``url`` without its user and password, which it sends as basic
    authentication (an ``Authorization`` header).

    Parameters
    ----------
    url : str
    **options
        Of :class:`urllib.request.Request` (``data``, ``headers``, ``method``).
    """
    import urllib.request

    prepared = urllib.request.Request(without_userinfo(url), **options)
    if token := basic_token(url):
        prepared.add_header("Authorization", f"Basic {token}")
    return prepared


def basic_token(url: str) -> str | None:
    """The basic authentication token of a URL's user and password (base64); None without
    them."""
    found = credentials(url)
    return base64.b64encode(":".join(found).encode()).decode() if found else None


def gdal_options(url: str) -> dict[str, str]:
    """GDAL's settings to read files under ``url`` with its user and password (basic
    authentication), given the URL without them (:func:`without_userinfo`)."""
    found = credentials(url)
    return {"GDAL_HTTP_AUTH": "BASIC", "GDAL_HTTP_USERPWD": ":".join(found)} if found else {}
