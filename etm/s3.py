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

import contextlib
import os
import re
import shutil
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from etm.errors import ConfigError, ObjectRefusedError, StorageError, hide, one_line
from etm.listing import StoredObject
from etm.urls import masked_url, split_userinfo, without_userinfo

#: Listings recorded in this process: ``bucket/prefix`` -> {``bucket/key``: object}.
SNAPSHOTS: dict[str, dict[str, StoredObject]] = {}
#: Prefixes nothing may write to, tag or delete (the chips' prefixes).
PROTECTED: set[str] = set()
#: Output prefixes whose objects Snakemake's removals leave in place (the jobs running).
REPLACED: set[str] = set()
#: Objects under those prefixes this process uploaded (``bucket/key``).
UPLOADED: set[str] = set()
#: Attempts per S3 request, the first one included, when AWS_MAX_ATTEMPTS is not set.
MAX_ATTEMPTS = 10


def client_config() -> Config:
    """Retries and timeouts of every S3 client etm and its storage plugin create.

    botocore's "legacy" retry mode retries each request on its own: 503 SlowDown, 500,
    502, 504, throttling codes, 429, reset connections and timeouts, waiting up to
    2^(n-1) s (random) before the n-th retry, 10 attempts in all. Not "standard" mode:
    its retry quota stops all retries of a client once spent, and only 2xx answers refill
    it, while Snakemake checks missing outputs and logs with HEAD requests that answer
    404; with every 3rd request throttled, the 71st such HEAD was no longer retried
    (loopback S3), which failed a whole run. AWS_MAX_ATTEMPTS (total attempts) and
    AWS_RETRY_MODE override the defaults. A response that has not started after 60 s is
    retried.
    """
    return Config(
        retries={
            "mode": os.environ.get("AWS_RETRY_MODE", "legacy"),
            "total_max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS", MAX_ATTEMPTS)),
        },
        connect_timeout=10,
        read_timeout=60,
    )


#: A bucket name as botocore accepts it (older buckets may have capitals and underscores).
_BUCKET_NAME = re.compile(r"[a-zA-Z0-9.\-_]{1,255}")


def split(path: str) -> tuple[str, str]:
    """Split ``bucket/prefix`` into the bucket and the key prefix (no leading slash).

    Raises
    ------
    ConfigError
        If there is no bucket name, or it is not one; never quoting a user or password
        written before the bucket (botocore's own error would).
    """
    bucket, _, key = path.lstrip("/").partition("/")
    _head, userinfo, tail = split_userinfo(path.lstrip("/"))
    # "user:pass/word@bucket/key": a password may hold "/", which ends the bucket's name.
    if userinfo is not None and ("@" in bucket or ":" in userinfo):
        raise ConfigError(
            f"***@{tail}: an S3 path holds no user or password; "
            "etm takes credentials from the AWS chain only (environment, profile, IAM role)"
        )
    if not _BUCKET_NAME.fullmatch(bucket):
        raise ConfigError(f"{path!r} is not a 'bucket/prefix' path: {bucket!r} is no bucket name")
    return bucket, key


def gdal_options() -> dict[str, str]:
    """GDAL settings for reading COGs and chips on S3 (``s3://``, ``/vsis3/``) with range
    requests, honouring AWS_ENDPOINT_URL.

    GDAL does not read AWS_ENDPOINT_URL itself; its host, scheme and path-style addressing
    are translated to GDAL's own settings.
    """
    options = {
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
        "GDAL_HTTP_MAX_RETRY": "10",
        "GDAL_HTTP_RETRY_DELAY": "1",
    }
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:  # a user and password in it are for no S3 server: GDAL never gets them
        scheme, _, host = without_userinfo(endpoint).partition("://")
        options.update(
            AWS_S3_ENDPOINT=host.rstrip("/"),
            AWS_HTTPS="YES" if scheme == "https" else "NO",
            AWS_VIRTUAL_HOSTING="FALSE",
        )
    return options


#: boto3's default session is not safe to make clients from in threads (jobs in one
#: process); a client, once made, is.
_MAKING_CLIENTS = threading.Lock()


def client():
    """An S3 client honouring AWS_ENDPOINT_URL and the credential chain, with retries."""
    check_endpoint()
    with _MAKING_CLIENTS:
        return boto3.client("s3", config=client_config())


#: The proxies botocore and urllib read: their user and password are hidden too.
PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def check_endpoint() -> None:
    """Refuse an endpoint URL (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3``) that is not
    ``http://`` or ``https://``, or holds whitespace: botocore's error would quote it whole,
    password included. A user and password in it, or in a proxy's URL (:data:`PROXIES`),
    are hidden in every line said (:func:`etm.errors.hide`), wherever a message quotes
    them.

    Raises
    ------
    ConfigError
        Naming the variable and the URL without its user and password.
    """
    for name in PROXIES:
        hide(os.environ.get(name, ""))
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        endpoint = os.environ.get(name, "")
        hide(endpoint)
        if not endpoint:
            continue
        if not endpoint.lower().startswith(("http://", "https://")):
            problem = "is not an http:// or https:// URL"
        elif any(character.isspace() for character in endpoint):
            problem = "holds whitespace"
        else:
            continue
        raise ConfigError(
            f"{name} {masked_url(endpoint)}: {problem}; write it as http(s)://host:port"
        )


#: Content types of what etm publishes, so that browsers and static hosts (S3 website
#: hosting, CloudFront) serve the map page as a page, and clients recognise the COGs.
CONTENT_TYPES = {
    ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
    ".json": "application/json",
    ".ndjson": "application/x-ndjson",
    ".parquet": "application/vnd.apache.parquet",
    ".png": "image/png",
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


def content_type(path: str) -> str:
    """The Content-Type an object is stored with, from its file name."""
    return CONTENT_TYPES.get(os.path.splitext(path)[1], "binary/octet-stream")


def read(path: str, *, missing_ok: bool = False, using=None) -> bytes | None:
    """The bytes of ``bucket/key``, in one GET; None if it does not exist and ``missing_ok``.

    ``using`` is a client to share (clients are thread-safe; making one costs about 10 ms
    of CPU and is not).

    Raises
    ------
    StorageError
        Naming the object, after botocore's retries.
    """
    bucket, key = split(path)
    with storage_errors("read", path):
        try:
            return (using or client()).get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            if missing_ok and error.response["Error"]["Code"] == "NoSuchKey":
                return None
            raise


def write(path: str, data: bytes) -> None:
    """Store ``data`` as ``bucket/key``, whole (one PUT), with its content type.

    Raises
    ------
    StorageError
        Naming the object, after botocore's retries.
    """
    bucket, key = split(path)
    with storage_errors("write", path):
        client().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type(key))


#: What S3 answers for an object deleted since it was listed, and for one the role may not
#: read (a HEAD's answer has no body: its code is the status).
GONE = ("NoSuchKey", "404", "NotFound")
DENIED = ("AccessDenied", "403", "Forbidden")


def download(path: str, folder: str) -> str:
    """Download ``bucket/key`` into a folder (under a name unique to it); its local path.

    Raises
    ------
    ObjectRefusedError
        If S3 answers that the object is gone (404) or not for this role (403).
    StorageError
        Naming the object, after botocore's retries.
    """
    local = os.path.join(folder, split(path)[1].replace("/", "_"))
    if download_to(path, local) is None:
        raise ObjectRefusedError(f"s3://{path} is gone (404) since it was listed")
    return local


def download_to(path: str, local: str) -> StoredObject | None:
    """Download ``bucket/key`` to a local file with one GET; the object it was, or None if
    S3 answers that it is gone (404).

    Raises
    ------
    ObjectRefusedError
        If S3 refuses the role access to it (403).
    StorageError
        Naming the object, after botocore's retries.
    """
    bucket, key = split(path)
    answer = _answer(path, lambda s3: s3.get_object(Bucket=bucket, Key=key))
    if answer is None:
        return None
    with storage_errors("read", path), open(local, "wb") as stream:
        shutil.copyfileobj(answer["Body"], stream, 1 << 20)
    return _answered(path, answer)


def stat(path: str) -> StoredObject | None:
    """What ``bucket/key`` is now (one HEAD), or None if S3 answers that it is gone (404).

    Raises
    ------
    ObjectRefusedError
        If S3 refuses the role access to it (403).
    StorageError
        Naming the object, after botocore's retries.
    """
    bucket, key = split(path)
    answer = _answer(path, lambda s3: s3.head_object(Bucket=bucket, Key=key))
    return None if answer is None else _answered(path, answer)


def _answer(path: str, request) -> dict | None:
    """S3's answer to ``request(client)`` about ``bucket/key``; None if it is gone (404)."""
    with storage_errors("read", path):
        try:
            return request(client())
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in GONE:
                return None
            if code in DENIED:
                raise ObjectRefusedError(
                    f"S3 refused access (403) to s3://{path}: the role running etm needs "
                    "s3:GetObject on it"
                ) from None
            raise


def _answered(path: str, answer: dict) -> StoredObject:
    """The object a GET's or HEAD's answer describes."""
    etag = answer["ETag"].strip('"')
    return StoredObject(path, answer["ContentLength"], answer["LastModified"].timestamp(), etag)


def as_folder(prefix: str) -> str:
    """A prefix with exactly one trailing slash, so that ``tile6`` never matches ``tile60``."""
    return prefix.rstrip("/") + "/"


def listed_object(bucket: str, item: dict) -> StoredObject:
    """The object a ListObjectsV2 entry (``Contents`` item) of ``bucket`` describes."""
    return StoredObject(
        f"{bucket}/{item['Key']}", item["Size"], item["LastModified"].timestamp(),
        item["ETag"].strip('"'),
    )  # fmt: skip


class S3Listing:
    """Listings of ``bucket/prefix`` paths with paginated ListObjectsV2.

    Every full listing is recorded in :data:`SNAPSHOTS`, for the storage plugin, but with
    ``record=False``: a job's own listings (a baseline's, in a thread of the main process)
    must not change what the plugin answers about the chips the run listed.
    """

    def __init__(self, s3=None, *, record: bool = True):
        self.s3 = s3 or client()
        self.record = record

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
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
        with storage_errors("list", as_folder(prefix)):
            for page in pages:
                for item in page.get("Contents", ()):
                    found = listed_object(bucket, item)
                    objects[found.path] = found
                    yield found
        if self.record:
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
        with storage_errors("list", as_folder(prefix)):
            return [
                common["Prefix"][len(key) :].rstrip("/")
                for page in pages
                for common in page.get("CommonPrefixes", ())
            ]


@dataclass(frozen=True)
class Folder:
    """One listing of a folder: the objects directly in it and its subfolders' paths."""

    objects: dict[str, StoredObject]
    subfolders: frozenset[str]

    def answers(self, path: str) -> bool:
        """Whether this listing holds ``bucket/key`` as an object or a subfolder."""
        return path in self.objects or path in self.subfolders


class FolderListings:
    """Answers about output objects from one listing of their folder, not a request each.

    Once a container ends, Snakemake asks about every output of its jobs (whether it
    exists, is a folder, its time and size: about ten HEADs and listings a job, one after
    the other in the main process), and before each choice of jobs to start, the size of
    every input of every job ready to start (a region job's 18 tile COGs: 45,000 questions
    a round at the team's scale). A container's outputs share a few folders, which no other
    container of the run writes and which are asked about once it has ended. So an object a
    listing holds is answered from it; a folder is listed again when asked about an object
    its listing lacks, or when this process writes or removes in it (Snakemake removes a
    job's old outputs before the job runs, and a failed job's after). A folder of more than
    one page, or one S3 refuses to list, is left to per-object requests.
    """

    def __init__(self):
        self._folders: dict[str, Folder | None] = {}
        self._lock = threading.Lock()
        self._s3 = None

    def lookup(self, path: str) -> Folder | None:
        """A listing of the folder of ``bucket/key`` that answers for it, or None when S3
        must be asked about the object itself."""
        folder = path.rsplit("/", 1)[0]
        with self._lock:
            if folder in self._folders and self._folders[folder] is None:
                return None
            known = self._folders.get(folder)
            if known and known.answers(path):
                return known
            self._folders[folder] = self._list(folder)
            return self._folders[folder]

    def forget(self, path: str) -> None:
        """Drop the listing of the folder of ``bucket/key``, which this process changes."""
        with self._lock:
            self._folders.pop(path.rsplit("/", 1)[0], None)

    def _list(self, folder: str) -> Folder | None:
        bucket, key = split(as_folder(folder))
        self._s3 = self._s3 or client()
        try:
            page = self._s3.list_objects_v2(Bucket=bucket, Prefix=key, Delimiter="/")
        except (BotoCoreError, ClientError):
            return None
        if page.get("IsTruncated"):
            return None
        objects = {
            found.path: found
            for found in (listed_object(bucket, item) for item in page.get("Contents", ()))
        }
        subfolders = frozenset(
            f"{bucket}/{common['Prefix'].rstrip('/')}" for common in page.get("CommonPrefixes", ())
        )
        return Folder(objects, subfolders)


#: The storage plugin's answers about outputs, in this process.
OUTPUT_FOLDERS = FolderListings()


@contextlib.contextmanager
def storage_errors(doing: str, path: str):
    """Turn a failed S3 request (after botocore's retries) into one line naming the object
    or prefix (``bucket/key``) and what was being done to it."""
    try:
        yield
    except (BotoCoreError, ClientError) as error:
        raise StorageError(
            f"cannot {doing} s3://{path}: {one_line(error)}; check the network, "
            "AWS_ENDPOINT_URL and the credentials, then run again"
        ) from None


def listed_prefix(path: str) -> str | None:
    """The listed prefix ``bucket/key`` lies under, if any."""
    folder, _, _name = path.rstrip("/").rpartition("/")
    return _nearest(folder, SNAPSHOTS) if folder else None


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


def replace_only(prefix: str) -> None:
    """Leave the objects under an output prefix in place when Snakemake removes a job's
    outputs, before the job and after it fails (:func:`kept_on_removal`): each job replaces
    its outputs whole, one upload each once it succeeds, so that a rebuild that fails
    leaves the version before it."""
    REPLACED.add(prefix.rstrip("/"))


def uploaded(path: str) -> None:
    """Record that this process uploaded ``bucket/key``."""
    if _nearest(path, REPLACED):
        UPLOADED.add(path)


def kept_on_removal(path: str) -> bool:
    """Whether Snakemake's removal of ``bucket/key`` leaves it: it lies under an output
    prefix (:func:`replace_only`), and this process did not upload it. A version a job of
    this process uploaded is removed when the job then fails (its other output's upload
    refused, say): the month is built again, rather than published half new."""
    return _nearest(path, REPLACED) is not None and path not in UPLOADED


def protected_prefix(path: str) -> str | None:
    """The protected prefix ``bucket/key`` is or lies under, if any."""
    return _nearest(path, PROTECTED)


def _nearest(path: str, prefixes: Collection[str]) -> str | None:
    """The deepest of the prefixes that ``path`` is or lies under, if any: one look-up per
    folder level, as the scheduler asks about every ready job's chips each round."""
    folder = path.rstrip("/")
    while folder not in prefixes:
        if "/" not in folder:
            return None
        folder = folder.rsplit("/", 1)[0]
    return folder
