"""A static HTTP server with range requests (as S3 website hosting and CloudFront answer
them), serving a folder on loopback: what the map page needs of a host."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Answers ``Range: bytes=a-b`` (and ``bytes=-n``, the last n) with 206 and those
    bytes; records each request (with its ``Authorization`` header, if any)."""

    requests: list[str]
    #: False: a host that ignores Range and sends whole files.
    ranges = True

    def send_head(self):
        wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        path = self.translate_path(self.path)
        asked = f"{self.command} {self.path} {self.headers.get('Range', 'whole')}"
        authorization = self.headers.get("Authorization")
        self.requests.append(f"{asked} {authorization}" if authorization else asked)
        self.left = None
        if not wanted or not self.ranges or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        if wanted[1]:
            start, end = int(wanted[1]), min(int(wanted[2] or size - 1), size - 1)
        else:  # a suffix: the last bytes
            start, end = max(0, size - int(wanted[2])), size - 1
        stream = open(path, "rb")  # noqa: SIM115 (closed by the base class after copyfile)
        stream.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self.left = end - start + 1
        return stream

    def copyfile(self, source, outputfile):
        if self.left is None:
            return super().copyfile(source, outputfile)
        outputfile.write(source.read(self.left))

    def log_message(self, *args):
        pass


def certificate(folder: str) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (openssl), and its key."""
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@contextlib.contextmanager
def serving(
    folder: str, tls: tuple[str, str] | None = None, ranges: bool = True
) -> Iterator[tuple[str, list[str]]]:
    """The folder's base URL while the server runs, and the requests it answered; over
    HTTPS with ``tls`` (a certificate and its key); whole files only without ``ranges``."""
    requests: list[str] = []
    handler = type("Handler", (RangeHandler,), {"requests": requests, "ranges": ranges})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=folder)
    )
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        scheme = "https" if tls else "http"
        yield f"{scheme}://127.0.0.1:{server.server_port}/", requests
    finally:
        server.shutdown()
        server.server_close()


def served_bytes(folder: Path, request: str) -> int:
    """The bytes a request of the server's log was answered with (0 for a missing file)."""
    method, path, asked = request.split(" ", 2)
    file = folder / path.lstrip("/").split("?")[0]
    if method != "GET" or not file.is_file():
        return 0
    size = file.stat().st_size
    if wanted := re.fullmatch(r"bytes=(\d+)-(\d*)", asked):
        return min(int(wanted[2] or size - 1), size - 1) - int(wanted[1]) + 1
    if wanted := re.fullmatch(r"bytes=-(\d+)", asked):
        return min(int(wanted[1]), size)
    return size
