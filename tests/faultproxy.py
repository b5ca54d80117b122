"""A fault-injecting HTTP proxy in front of the loopback S3 server, for the fault tests.

Every ``every``-th request (counting from the first) gets a fault instead of its answer,
cycling through 503 SlowDown, 500 InternalError, a reset connection and a slow (but
correct) response. ``hold`` stalls the first request that matches a test until the test
releases it, so that a test can kill the workflow while a download or an upload is in
flight; ``release(drop=True)`` then drops it unanswered, as the killed client's
connection would be. ``deny`` answers 403 AccessDenied to the requests it matches, as S3
does for a role with a narrower grant; ``gone`` answers 404 NoSuchKey, as S3 does for an
object deleted since it was listed. The proxy is bounded: it answers at most
``max_requests`` requests normally, and holds or delays none for longer than
``max_hold_s`` seconds.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAULTS = ("slowdown", "internal", "reset", "slow")
ERROR_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
    "<Message>{message}</Message></Error>"
)
#: Hop-by-hop headers the proxy does not relay.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class FaultProxy:
    """Reverse proxy on 127.0.0.1 forwarding to ``upstream``, injecting faults.

    Parameters
    ----------
    upstream : str
        The S3 server's endpoint, ``http://127.0.0.1:<port>``.
    every : int
        Every this many-th request fails (1: every request; 0: none).
    faults : tuple of str
        The faults to cycle through (default: all of :data:`FAULTS`).
    after : int
        Requests answered normally before faults start.
    slow_s : float
        Delay of a slow response.
    max_requests : int
        Requests answered at most; later ones are refused with 503 and counted as overflow.
    max_hold_s : float
        Longest a held request waits for :meth:`release`.
    deny, gone : callable, optional
        ``(method, path)``: whether to answer 403 AccessDenied, or 404 NoSuchKey.
    """

    def __init__(
        self,
        upstream: str,
        every: int = 0,
        faults: tuple[str, ...] = FAULTS,
        after: int = 0,
        slow_s: float = 1.0,
        max_requests: int = 20_000,
        max_hold_s: float = 120.0,
        deny: Callable[[str, str], bool] | None = None,
        gone: Callable[[str, str], bool] | None = None,
    ):
        self.upstream = urlsplit(upstream)
        self.every, self.cycle, self.after, self.slow_s = every, faults, after, slow_s
        self.max_requests, self.max_hold_s = max_requests, max_hold_s
        self.deny, self.gone = deny, gone
        self.faults: list[tuple[str, str, str]] = []  # (fault, method, path)
        self.seen: list[tuple[str, str]] = []  # (method, path) of every request
        self.forwarded = 0
        self.overflow = 0
        self._count = 0
        self._lock = threading.Lock()
        self._hold: Callable[[str, str], bool] | None = None
        self.held = threading.Event()
        self._released = threading.Event()
        self._drop = False
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_request(self):
                proxy._handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_request

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def hold(self, matches: Callable[[str, str], bool]) -> None:
        """Stall the first request for which ``matches(method, path)`` is true."""
        self.held.clear()
        self._released.clear()
        self._hold = matches

    def release(self, drop: bool = False) -> None:
        """Let the held request go on, or with ``drop`` close its connection unanswered."""
        self._hold = None
        self._drop = drop
        self._released.set()

    def _next_fault(self) -> str | None:
        with self._lock:
            self._count += 1
            count = self._count
        if count > self.max_requests:
            self.overflow += 1
            return "slowdown"
        count -= self.after
        if count > 0 and self.every and count % self.every == 0:
            return self.cycle[(count // self.every - 1) % len(self.cycle)]
        return None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        if "chunked" in handler.headers.get("Transfer-Encoding", ""):
            raise NotImplementedError("chunked request bodies are not relayed")
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        method, path = handler.command, handler.path
        self.seen.append((method, path))
        matches = self._hold
        if matches is not None and matches(method, path):
            self._hold = None
            self.held.set()
            self._released.wait(self.max_hold_s)
            if self._drop:
                handler.close_connection = True
                return
        if self.deny and self.deny(method, path):
            fault = "denied"
        elif self.gone and self.gone(method, path):
            fault = "gone"
        else:
            fault = self._next_fault()
        if fault:
            self.faults.append((fault, method, path))
        if fault == "reset":
            # SO_LINGER 0: close() sends a TCP reset instead of a clean end of stream.
            handler.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            handler.close_connection = True
            handler.connection.close()
            return
        if fault in ("slowdown", "internal", "denied", "gone"):
            status, code, message = {
                "slowdown": (503, "SlowDown", "Please reduce your request rate."),
                "internal": (
                    500,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                ),
                "denied": (403, "AccessDenied", "Access Denied"),
                "gone": (404, "NoSuchKey", "The specified key does not exist."),
            }[fault]
            answer = ERROR_BODY.format(code=code, message=message).encode()
            handler.send_response(status)
            handler.send_header("Content-Type", "application/xml")
            handler.send_header("Content-Length", str(len(answer)))
            handler.end_headers()
            if method != "HEAD":  # as S3 does: a HEAD answer never has a body
                handler.wfile.write(answer)
            return
        if fault == "slow":
            time.sleep(min(self.slow_s, self.max_hold_s))
        self._forward(handler, method, path, body)

    def _forward(self, handler, method: str, path: str, body: bytes) -> None:
        upstream = http.client.HTTPConnection(
            self.upstream.hostname, self.upstream.port, timeout=60
        )
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "expect"}
        upstream.request(method, path, body=body or None, headers=headers)
        response = upstream.getresponse()
        answer = response.read()
        handler.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                handler.send_header(name, value)
        # A HEAD answer has no body but the object's length.
        length = response.getheader("Content-Length") if method == "HEAD" else len(answer)
        handler.send_header("Content-Length", str(length or 0))
        handler.end_headers()
        try:
            if method != "HEAD":
                handler.wfile.write(answer)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client is gone (killed)
        upstream.close()
        with self._lock:
            self.forwarded += 1

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
