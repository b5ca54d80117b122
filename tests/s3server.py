"""A real S3 HTTP server on loopback (moto's server mode) that counts the requests it answers."""

from __future__ import annotations

import os
import threading
import urllib.request
from collections import Counter
from pathlib import Path

import boto3
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

#: Credentials for the loopback server only; moto accepts any.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAETMTESTFAKEKEY00",
    "AWS_SECRET_ACCESS_KEY": "etm-test-fake-secret-0123456789abcdefXYZ",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def assert_no_credentials(*texts: str) -> None:
    """None of the texts holds the fake access key or secret key."""
    for text in texts:
        for secret in (
            FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        ):
            assert secret not in text


class QuietHandler(MotoRequestHandler):
    """No access log on stderr: tests count requests instead."""

    def log_request(self, *args, **kwargs):
        pass


class S3Server:
    """moto's S3 on 127.0.0.1 (a free port), recording (method, path, query) of each request."""

    def __init__(self):
        self.requests: list[tuple[str, str, str]] = []
        app = DomainDispatcherApplication(create_backend_app)

        def counting_app(environ, start_response):
            self.requests.append(
                (environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("QUERY_STRING", ""))
            )
            return app(environ, start_response)

        self._server = make_server(
            "127.0.0.1", 0, counting_app, threaded=True, request_handler=QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        # moto keeps one state per process: start every server empty.
        urllib.request.urlopen(
            urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        )
        self.reset_count()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def environment(self) -> dict[str, str]:
        """What a client process needs to reach this server: endpoint and fake credentials."""
        return {"AWS_ENDPOINT_URL": self.endpoint, **FAKE_CREDENTIALS}

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )

    def reset_count(self) -> None:
        self.requests.clear()

    def count(self) -> Counter:
        """Requests since the last reset, by kind (GET list, GET object, HEAD, PUT, ...)."""

        def kind(method, path, query):
            if method == "GET" and ("list-type" in query or path.count("/") <= 1):
                return "LIST"
            return method

        return Counter(kind(*r) for r in self.requests)

    def upload_tree(self, folder: Path, bucket: str, under: str = "") -> int:
        """Upload every file under a local folder as ``under/<relative path>`` keys."""
        s3 = self.client()
        count = 0
        for root, _dirs, files in os.walk(folder):
            for name in files:
                path = Path(root) / name
                key = (
                    str(Path(under) / path.relative_to(folder))
                    if under
                    else str(path.relative_to(folder))
                )
                s3.upload_file(str(path), bucket, key)
                count += 1
        return count

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
