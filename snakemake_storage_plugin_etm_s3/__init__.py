"""Snakemake storage plugin ``etm-s3``: the S3 plugin, answered from etm's listings.

A thin subclass of snakemake-storage-plugin-s3:

- Existence, size and modification time of every object under a prefix that etm listed
  (tile prefixes, the output prefix) come from that one paginated listing, so building
  the DAG sends no request per chip (``inventory``).
- No setting takes credentials: boto3 uses the AWS credential chain or an IAM role, and
  AWS_ENDPOINT_URL for the endpoint, so nothing secret is forwarded to jobs.
- After jobs end, their outputs' existence, size and time come from one listing of each
  output folder (``s3.FolderListings``), not about ten requests a job.
- Chips (objects under a listed input prefix) are read-only for the whole run: their
  existence, size and time come from the listing, and each is fetched with one GET, of the
  listed version only (``If-Match`` its listed ETag, which its month records); one gone or
  rewritten since is left to its month's job.
- Nothing is ever written or deleted under a protected (input) prefix, no bucket is
  created, and removing an output never deletes its bucket.
- While jobs run, a published object is replaced by its job's upload, never removed
  before the job or after it fails, unless this process uploaded it
  (``s3.replace_only``): a failed rebuild leaves the version before it published, which
  the catalog links.

Importing it also has Snakemake check each config file before loading it
(:func:`etm.config.check_snakemake_config_files`): Snakemake imports every installed
storage plugin at the start of its command line, before it reads ``--configfile``.
"""

import contextlib
import shutil
from dataclasses import dataclass, field
from typing import Optional

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError
from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_storage_plugins.io import IOCacheStorageInterface, Mtime
from snakemake_interface_storage_plugins.settings import StorageProviderSettingsBase
from snakemake_storage_plugin_s3 import StorageObject as S3StorageObject
from snakemake_storage_plugin_s3 import StorageProvider as S3StorageProvider

from etm import s3
from etm.config import check_snakemake_config_files
from etm.errors import ConfigError, say, without_passwords

check_snakemake_config_files()


@dataclass
class StorageProviderSettings(StorageProviderSettingsBase):
    # Optional[], not "str | None": Snakemake's settings parser recognises typing.Union only.
    region: Optional[str] = field(  # noqa: UP045
        default=None,
        metadata={"help": "AWS region (default: the AWS configuration's region)"},
    )


class StorageProvider(S3StorageProvider):
    def __post_init__(self):
        # Endpoint (AWS_ENDPOINT_URL) and credentials come from boto3's own chain.
        try:
            s3.check_endpoint()
        except ConfigError as error:
            say([str(error)], prefix="etm error: ")
            raise WorkflowError(str(error)) from None
        self.s3c = boto3.resource(
            "s3",
            region_name=self.settings.region,
            config=s3.client_config(),
        )


#: S3's answers to a GET of a chip's listed version when it is gone, was rewritten, or is
#: refused: its month's job says which (etm.publish.chips_present).
CHANGED = (*s3.GONE, "PreconditionFailed", *s3.DENIED)


class StorageObject(S3StorageObject):
    def _path(self) -> str:
        return f"{self.bucket}/{self.key}"

    @contextlib.contextmanager
    def _permission(self, needed: str):
        """Turn S3's 403 into one line naming the object and the permission it needs, and
        any other failure into an error without the endpoint's password, if it has one."""
        try:
            yield
        except (BotoCoreError, ClientError, S3UploadFailedError) as error:
            code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
            if code not in s3.DENIED and not any(f"({d})" in str(error) for d in s3.DENIED):
                raise WorkflowError(without_passwords(str(error))) from None
            problem = (
                f"S3 refused access (403) to s3://{self._path()}: the role running etm needs "
                f"{needed} (docs/aws.md: 3. Roles, and docs/aws/*.json)"
            )
            # Snakemake wraps the error in its own lines; this one says it all.
            say([problem], prefix="etm error: ")
            raise WorkflowError(problem) from None

    def _checked(self, question):
        # A HEAD of a missing object answers 403, not 404, without s3:ListBucket.
        with self._permission(
            f"s3:GetObject on it and s3:ListBucket on bucket {self.bucket} for its prefix"
        ):
            return question()

    def get_inventory_parent(self) -> str | None:
        """The listed prefix holding this object: its existence is known from that listing."""
        prefix = s3.listed_prefix(self._path())
        return self.cache_key(prefix) if prefix else None

    async def inventory(self, cache: IOCacheStorageInterface):
        """Fill Snakemake's cache from every listing etm made in this process (no request).

        Snakemake asks for an inventory only from the files it starts the DAG from, so the
        first call loads every listing: chips and existing outputs alike. Snakemake clears
        the cache when jobs start running, so these answers are never used after a job.
        """
        for prefix, objects in s3.SNAPSHOTS.items():
            parent = self.cache_key(prefix)
            if parent in cache.exists_in_storage.has_inventory:
                continue
            for obj in objects.values():
                key = self.cache_key(obj.path)
                cache.exists_in_storage[key] = True
                cache.mtime[key] = Mtime(storage=obj.mtime)
                cache.size[key] = obj.size
            cache.exists_in_storage.has_inventory.add(parent)

    # Chips: answered from the listing of their (read-only) input prefix; outputs from a
    # recent listing of their folder (s3.FolderListings); anything else by S3 itself.
    def _listed(self) -> tuple[bool, s3.StoredObject | None]:
        """Whether a listing answers for this object, and its object if it is one."""
        listed, chip = s3.listed_input(self._path())
        if listed:
            return True, chip
        folder = s3.OUTPUT_FOLDERS.lookup(self._path())
        if folder is None or self._path() in folder.subfolders:
            return False, None  # a folder's time and size are its objects': S3 answers
        return True, folder.objects.get(self._path())

    def exists(self) -> bool:
        listed, found = self._listed()
        return found is not None if listed else self._checked(super().exists)

    def mtime(self) -> float:
        listed, found = self._listed()
        return found.mtime if listed and found else self._checked(super().mtime)

    def size(self) -> int:
        listed, found = self._listed()
        return found.size if listed and found else self._checked(super().size)

    def is_dir(self) -> bool:
        listed, _found = self._listed()
        return False if listed else self._checked(super().is_dir)

    def retrieve_object(self):
        listed, chip = s3.listed_input(self._path())
        if not (listed and chip):
            with self._permission("s3:GetObject on it"):
                return super().retrieve_object()
        # One GET, without the HEAD that boto3's managed download sends first, of the
        # listed version only: the month records that version as what it was built from.
        with self._permission("s3:GetObject on it"):
            try:
                body = self.s3obj().get(IfMatch=f'"{chip.etag}"')["Body"]
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in CHANGED:
                    raise
                # Gone, rewritten or refused since the run listed it: no local copy, and its
                # month's job, not the whole run (as a failed retrieval would), says what
                # then (etm.publish.chips_present).
                return
        with open(self.local_path(), "wb") as local:
            shutil.copyfileobj(body, local, 1 << 20)

    def _refuse_if_protected(self, action: str) -> None:
        prefix = s3.protected_prefix(self._path())
        if prefix:
            raise WorkflowError(
                f"etm refuses to {action} s3://{self._path()}: it is under the input prefix "
                f"{prefix}, which the workflow never modifies"
            )

    def store_object(self):
        # Unlike the S3 plugin, never creates a bucket (nor asks for one with HeadBucket,
        # which a prefix-scoped IAM policy refuses): a missing bucket fails the upload.
        self._refuse_if_protected("write")
        s3.OUTPUT_FOLDERS.forget(self._path())
        with self._permission("s3:PutObject on it"):
            if self.local_path().is_dir():
                for item in self.local_path().rglob("*"):
                    if item.is_file():
                        self.s3obj(subkey=item.relative_to(self.local_path())).upload_file(
                            item, ExtraArgs={"ContentType": s3.content_type(item.name)}
                        )
            else:
                try:
                    self.s3obj().upload_file(
                        self.local_path(),
                        ExtraArgs={"ContentType": s3.content_type(self.local_path().name)},
                    )
                except Exception:
                    self._remove_outdated()
                    raise
                s3.uploaded(self._path())

    def _remove_outdated(self):
        """After a failed upload of a published object, remove the version before it: the
        job's record of what it built may be stored all the same (Snakemake stores a failed
        job's logs), and the month must be built again, not taken as published."""
        if s3.kept_on_removal(self._path()):
            with contextlib.suppress(BotoCoreError, ClientError):
                self.s3obj().delete()

    def remove(self):
        # Unlike the S3 plugin, never deletes the bucket, even when it is left empty.
        self._refuse_if_protected("delete")
        if s3.kept_on_removal(self._path()):
            return  # replaced by its job's upload (etm.s3.replace_only)
        s3.OUTPUT_FOLDERS.forget(self._path())
        with self._permission("s3:DeleteObject on it"):
            if self.is_dir():
                for item in self.get_subkeys():
                    item.delete()
            else:
                self.s3obj().delete()
