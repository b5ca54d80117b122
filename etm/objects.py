"""A published folder of objects, local or on S3, written object by object.

The series store (:mod:`etm.series`) is updated in place, one whole object at a time: a
local file is replaced by a rename, an S3 object by one PUT, so that a reader never sees
one half written. S3 clients come from :func:`etm.s3.client` (AWS_ENDPOINT_URL and the
credential chain).
"""

from __future__ import annotations

import hashlib
import os

from etm import s3
from etm.files import whole


class Folder:
    """Objects under a root, by key relative to it (``/``-separated)."""

    def __init__(self, root: str):
        #: A local folder, or ``s3://bucket/prefix``.
        self.root = root.rstrip("/")
        self.on_s3 = root.startswith("s3://")
        self._client = s3.client() if self.on_s3 else None
        #: Each existing object's digest (S3: its ETag, the MD5 of a one-part PUT; local:
        #: None, read when needed), from :meth:`list`.
        self.digests: dict[str, str | None] = {}

    def _s3(self, key: str) -> tuple[str, str]:
        return s3.split(f"{self.root.removeprefix('s3://')}/{key}")

    def list(self) -> dict[str, str | None]:
        """Every object's key and digest (one paginated listing on S3)."""
        if self.on_s3:
            prefix = self.root.removeprefix("s3://")
            self.digests = {
                stored.path[len(prefix) + 1 :]: stored.etag
                for stored in s3.S3Listing(self._client).walk(prefix)
            }
        else:
            self.digests = {}
            for folder, _, names in os.walk(self.root):
                for name in names:
                    key = os.path.relpath(os.path.join(folder, name), self.root)
                    self.digests[key.replace(os.sep, "/")] = None
        return self.digests

    def get(self, key: str) -> bytes | None:
        """An object's bytes; None if it does not exist."""
        if self.on_s3:
            return s3.read("/".join(self._s3(key)), missing_ok=True, using=self._client)
        try:
            with open(os.path.join(self.root, key), "rb") as stream:
                return stream.read()
        except FileNotFoundError:
            return None

    def put(self, key: str, data: bytes) -> bool:
        """Store an object whole, unless it already holds these bytes; whether it was."""
        digest = hashlib.md5(data).hexdigest()
        if key in self.digests and (self.digests[key] or self._local_md5(key)) == digest:
            return False
        if self.on_s3:
            bucket, name = self._s3(key)
            with s3.storage_errors("write", f"{bucket}/{name}"):
                self._client.put_object(
                    Bucket=bucket, Key=name, Body=data, ContentType=s3.content_type(name)
                )
        else:
            path = os.path.join(self.root, key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with whole(path) as partial, open(partial, "wb") as stream:
                stream.write(data)
        self.digests[key] = digest
        return True

    def _local_md5(self, key: str) -> str | None:
        data = None if self.on_s3 else self.get(key)
        return None if data is None else hashlib.md5(data).hexdigest()

    def delete(self, keys: list[str]) -> None:
        """Remove objects (1,000 a request on S3)."""
        if self.on_s3:
            for start in range(0, len(keys), 1000):
                bucket, _ = self._s3("")
                batch = [{"Key": self._s3(key)[1]} for key in keys[start : start + 1000]]
                with s3.storage_errors("delete under", self.root.removeprefix("s3://")):
                    self._client.delete_objects(Bucket=bucket, Delete={"Objects": batch})
        else:
            for key in keys:
                os.remove(os.path.join(self.root, key))
                # Folders left empty go too (a chunk key's folders).
                parent = os.path.dirname(os.path.join(self.root, key))
                while parent != self.root and not os.listdir(parent):
                    os.rmdir(parent)
                    parent = os.path.dirname(parent)
        for key in keys:
            self.digests.pop(key, None)

    def readable(self, keys: list[str], scratch: str) -> str:
        """A local folder holding these objects as files: the root itself if local, else
        a copy of them (only them) under ``scratch``."""
        if not self.on_s3:
            return self.root
        for key in keys:
            data = self.get(key)
            if data is not None:
                path = os.path.join(scratch, key)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as stream:
                    stream.write(data)
        return scratch


def local_files(folder: str) -> dict[str, str]:
    """Every file under a local folder: key (``/``-separated) -> path."""
    found = {}
    for parent, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(parent, name)
            found[os.path.relpath(path, folder).replace(os.sep, "/")] = path
    return found
