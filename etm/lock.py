"""One writer per output prefix: a lock object under the prefix, held while a run writes.

The lock is created atomically: locally with ``O_CREAT | O_EXCL``, on S3 with a
conditional PUT (``If-None-Match: *``), so of two runs only one gets it. It names the run
holding it. A lock left by a run killed on this machine is taken over (its process is
gone); any other lock is cleared with ``etm unlock PREFIX`` once its run is known gone.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError

from etm import s3
from etm.errors import EtmError, one_line

LOCK_NAME = ".etm-lock.json"


class OutputLockedError(EtmError):
    """Another run is writing the same output prefix."""


@dataclass(frozen=True)
class Holder:
    """The run that holds a lock."""

    run: str
    host: str
    pid: int
    directory: str
    started: str

    @classmethod
    def this_run(cls) -> Holder:
        return cls(
            uuid.uuid4().hex, socket.gethostname(), os.getpid(), os.getcwd(),
            datetime.now(UTC).isoformat(timespec="seconds"),
        )  # fmt: skip

    def describe(self) -> str:
        return (
            f"the run started {self.started} on host {self.host} (process {self.pid}, in "
            f"{self.directory})"
        )

    def is_gone(self) -> bool:
        """Whether the holder was on this machine and its process no longer exists."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


class OutputLock:
    """The lock of one output prefix: a local folder, or ``bucket/prefix`` on S3.

    Parameters
    ----------
    prefix : str
        The output prefix as the config spells it.
    on_s3 : bool
        Whether it is ``bucket/prefix`` on S3.
    label : str
        How messages name the prefix (``s3://...`` on S3).
    """

    def __init__(self, prefix: str, *, on_s3: bool, label: str):
        self.prefix, self.on_s3, self.label = prefix.rstrip("/"), on_s3, label
        self.held: Holder | None = None

    # Storage: create (atomically), read and remove the lock document.
    def _create(self, document: str) -> bool:
        if self.on_s3:
            bucket, key = s3.split(f"{self.prefix}/{LOCK_NAME}")
            try:
                s3.client().put_object(
                    Bucket=bucket, Key=key, Body=document.encode(), IfNoneMatch="*"
                )
            except ClientError as error:
                if error.response["Error"]["Code"] in ("PreconditionFailed", "412"):
                    return False
                raise
            return True
        os.makedirs(self.prefix, exist_ok=True)
        try:
            descriptor = os.open(self._path(), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w") as stream:
            stream.write(document)
        return True

    def _path(self) -> str:
        return os.path.join(self.prefix, LOCK_NAME)

    def holder(self) -> Holder | None:
        """The run holding the lock, or None."""
        try:
            if self.on_s3:
                bucket, key = s3.split(f"{self.prefix}/{LOCK_NAME}")
                text = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
            else:
                with open(self._path()) as stream:
                    text = stream.read()
        except FileNotFoundError:
            return None
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        try:
            return Holder(**json.loads(text))
        except (ValueError, TypeError):
            return Holder("?", "?", 0, "?", "?")  # unreadable: shown as unknown

    def _remove(self) -> None:
        if self.on_s3:
            bucket, key = s3.split(f"{self.prefix}/{LOCK_NAME}")
            s3.client().delete_object(Bucket=bucket, Key=key)
        elif os.path.exists(self._path()):
            os.remove(self._path())

    def acquire(self) -> str | None:
        """Take the lock for this run.

        Returns
        -------
        str or None
            A note when a lock left by a killed run on this machine was taken over.

        Raises
        ------
        OutputLockedError
            Naming the run that holds it, and how to clear it if that run is gone.
        """
        me = Holder.this_run()
        note = None
        for _attempt in range(2):
            try:
                if self._create(json.dumps(asdict(me))):
                    self.held = me
                    return note
                other = self.holder()
            except (BotoCoreError, ClientError, OSError) as error:
                raise OutputLockedError(
                    f"cannot lock the output prefix {self.label}: {one_line(error)}; check the "
                    f"access to it (etm writes {LOCK_NAME} there while a run writes)"
                ) from None
            if other is not None and not other.is_gone():
                raise OutputLockedError(
                    f"output prefix {self.label} is being written by {other.describe()}; "
                    "wait for it to finish, or, if that run is gone, remove its lock: "
                    f"etm unlock {self.label}"
                )
            if other is not None:
                note = f"took over the lock of {self.label} left by {other.describe()}"
                self._remove()
        raise OutputLockedError(f"output prefix {self.label}: another run took the lock first")

    def release(self) -> None:
        """Give the lock back, if this run holds it (safe to call more than once)."""
        if self.held is None:
            return
        holder = self.holder()
        if holder is not None and holder.run == self.held.run:
            self._remove()
        self.held = None
