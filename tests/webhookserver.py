"""A webhook receiver on loopback: records what each request brought (the JSON body POSTed,
or None for another method, and the ``Authorization`` header), answering ``status``, with
a ``Location`` header when given one (a redirect); or, with ``drip``, a header line every
``drip`` seconds and never the end of the headers (a server too slow to wait for)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    """``url`` holds ``credentials`` (``user:password``) when given, and a token in its path."""

    def __init__(
        self,
        status: int = 200,
        credentials: str = "",
        location: str | None = None,
        drip: float | None = None,
    ):
        self.bodies: list[dict | None] = []
        self.stopped = threading.Event()
        self.authorizations: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers["Content-Length"])
                self.answer(json.loads(self.rfile.read(length)))

            def do_GET(self):  # where urllib follows a 301, 302 or 303 to
                self.answer(None)

            def answer(self, body: dict | None):
                receiver.bodies.append(body)
                receiver.authorizations.append(self.headers.get("Authorization"))
                self.send_response(status)
                if drip:
                    self.flush_headers()  # the status line now, then a header at a time
                while drip and not receiver.stopped.wait(drip):
                    self.wfile.write(b"X-Drip: 1\r\n")
                    self.wfile.flush()
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        host, port = self._server.server_address[:2]
        self.host = f"{host}:{port}"
        user = f"{credentials}@" if credentials else ""
        self.url = f"http://{user}{host}:{port}/hooks/T000/SECRET-TOKEN"

    def stop(self):
        self.stopped.set()
        self._server.shutdown()
        self._server.server_close()
