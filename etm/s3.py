"""S3 for etm: paginated listings shared with Snakemake's storage layer, and write guards.

Prefixes are written as ``bucket/prefix``, exactly as in the config. One paginated
ListObjectsV2 per prefix (1,000 keys a request) answers every existence, size and
modification-time question Snakemake asks while it builds the DAG: the storage plugin
``snakemake_storage_plugin_etm_s3`` reads the listings recorded here (:data:`SNAPSHOTS`)
instead of sending a HEAD per object.

Clients take their endpoint from ``AWS_ENDPOINT_URL`` and their credentials from the AWS
credential chain (environment, shared files, IAM role); nothing here accepts keys.
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
from botocore.config import Config

from etm.errors import ConfigError
from etm.listing import StoredObject

#: Listings recorded in this process: ``bucket/prefix`` -> {``bucket/key``: object}.
SNAPSHOTS: dict[str, dict[str, StoredObject]] = {}
#: Prefixes nothing may write to, tag or delete (the chips' prefixes).
PROTECTED: set[str] = set()
#: botocore retries for every S3 client etm creates ("standard" mode retries throttling
#: and 5xx answers with exponential backoff).
RETRIES = {"max_attempts": 10, "mode": "standard"}


def split(path: str) -> tuple[str, str]:
    """Split ``bucket/prefix`` into the bucket and the key prefix (no leading slash).

    Raises
    ------
    ConfigError
        If there is no bucket name.
    """
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        raise ConfigError(f"{path!r} is not a 'bucket/prefix' path")
    return bucket, key


def client():
    """An S3 client honouring AWS_ENDPOINT_URL and the credential chain, with retries."""
    return boto3.client("s3", config=Config(retries=RETRIES))


def as_folder(prefix: str) -> str:
    """A prefix with exactly one trailing slash, so that ``tile6`` never matches ``tile60``."""
    return prefix.rstrip("/") + "/"


class S3Listing:
    """Listings of ``bucket/prefix`` paths with paginated ListObjectsV2.

    Every full listing is recorded in :data:`SNAPSHOTS`, for the storage plugin.
    """

    def __init__(self, s3=None):
        self.s3 = s3 or client()

    def walk(self, prefix: str) -> Iterator[StoredObject]:
        """Every object under a prefix, at any depth, as ``bucket/key`` paths.

        Parameters
        ----------
        prefix : str
            ``bucket/prefix``.

        Yields
        ------
        StoredObject
        """
        bucket, key = split(as_folder(prefix))
        objects = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for item in page.get("Contents", ()):
                path = f"{bucket}/{item['Key']}"
                objects[path] = StoredObject(path, item["Size"], item["LastModified"].timestamp())
                yield objects[path]
        SNAPSHOTS[prefix.rstrip("/")] = objects

    def snapshot(self, prefix: str) -> int:
        """List a prefix only to record it in :data:`SNAPSHOTS`; returns how many objects."""
        return sum(1 for _ in self.walk(prefix))

    def folders(self, prefix: str) -> list[str]:
        """Names of the folders directly under a prefix (one request per 1,000 folders).

        Parameters
        ----------
        prefix : str
            ``bucket/prefix``.

        Returns
        -------
        list of str
        """
        bucket, key = split(as_folder(prefix))
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=key, Delimiter="/"
        )
        return [
            common["Prefix"][len(key) :].rstrip("/")
            for page in pages
            for common in page.get("CommonPrefixes", ())
        ]


def listed_prefix(path: str) -> str | None:
    """The listed prefix ``bucket/key`` lies under, if any (one look-up per folder level)."""
    folder = path.rstrip("/")
    while "/" in folder:
        folder = folder.rsplit("/", 1)[0]
        if folder in SNAPSHOTS:
            return folder
    return None


def listed_input(path: str) -> tuple[bool, StoredObject | None]:
    """Whether ``bucket/key`` lies under a listed input prefix, and its object if it exists.

    Inputs are never modified by the workflow, so within one run their listing stays true.
    """
    prefix = listed_prefix(path)
    if prefix is None or protected_prefix(path) is None:
        return False, None
    return True, SNAPSHOTS[prefix].get(path)


def protect(prefixes) -> None:
    """Declare prefixes read-only for every storage operation in this process."""
    PROTECTED.update(p.rstrip("/") for p in prefixes)


def protected_prefix(path: str) -> str | None:
    """The protected prefix ``bucket/key`` lies under, if any."""
    return next((p for p in PROTECTED if as_folder(path).startswith(as_folder(p))), None)
