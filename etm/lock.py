"""One writer per output prefix: a lock object under the prefix, held while a run writes.

The lock is created atomically: locally with ``O_CREAT | O_EXCL``, on S3 with a
conditional PUT (``If-None-Match: *``), so of two runs only one gets it. It names the run
holding it, and with profiles/aws where that run's containers run. A lock left by a run
killed on this machine is taken over once its containers have ended, conditionally on the
lock being the one that was read: on S3 a PUT ``If-Match`` its ETag, locally a replace
under an ``flock`` of the output folder. So of two runs racing to take over a stale
lock, one wins. Release is conditional the same way. Any other lock is cleared with
``etm unlock PREFIX``, which refuses a lock whose run is alive on this machine.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import stat
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError

from etm import s3
from etm.errors import EtmError, escaped, one_line
from etm.files import partial_path

LOCK_NAME = ".etm-lock.json"
#: What is read of a lock: etm's are under 1 KB; a larger file is an unknown holder's.
MAX_LOCK_BYTES = 64 * 1024


class LockLostError(EtmError):
    """The lock a run held was removed or replaced before the run gave it back."""


class OutputLockedError(EtmError):
    """Another run is writing the same output prefix."""


@dataclass(frozen=True)
class Holder:
    """The run that holds a lock; with profiles/aws, where its containers run (``batch``:
    ``region`` and ``queue``), so that their run can be found by its id."""

    run: str
    host: str
    pid: int
    directory: str
    started: str
    batch: dict[str, str] | None = field(default=None)

    @classmethod
    def parse(cls, text: str) -> Holder:
        """The holder a lock's text names; an unknown one (``?``, process 0) if the text is
        not what etm writes, as a hand-edited or half-written lock may be."""
        try:
            holder = cls(**json.loads(text))
        except (ValueError, TypeError, RecursionError):
            return cls("?", "?", 0, "?", "?")
        texts = (holder.run, holder.host, holder.directory, holder.started)
        batch = holder.batch
        if (
            not all(type(value) is str for value in texts)
            or type(holder.pid) is not int
            or holder.pid <= 0
            or not (batch is None or type(batch) is dict and set(batch) == {"region", "queue"}
                    and all(type(value) is str for value in batch.values()))
        ):  # fmt: skip
            return cls("?", "?", 0, "?", "?")
        return holder

    @classmethod
    def this_run(cls) -> Holder:
        return cls(
            uuid.uuid4().hex, socket.gethostname(), os.getpid(), os.getcwd(),
            datetime.now(UTC).isoformat(timespec="seconds"),
        )  # fmt: skip

    def describe(self) -> str:
        """The run, as messages name it (its fields escaped: a lock may be edited by hand)."""
        return escaped(
            f"the run started {self.started} on host {self.host} (process {self.pid}, in "
            f"{self.directory})"
        )

    def processes_here(self) -> list[int]:
        """The holder's processes on this machine: its main process, and its run's jobs (a
        kill -9 of the main process leaves them writing), which :data:`RUN_VARIABLE` in
        their environment names."""
        if self.host != socket.gethostname():
            return []
        try:
            os.kill(self.pid, 0)
            found = [self.pid]
        except (ProcessLookupError, OverflowError):  # beyond every pid: no process
            found = []
        except PermissionError:
            found = [self.pid]
        return found + [pid for pid in processes_of_run(self.run) if pid != self.pid]

    def is_gone(self) -> bool:
        """Whether the holder was on this machine and none of its processes exists."""
        return self.host == socket.gethostname() and not self.processes_here()

    def is_alive_here(self) -> bool:
        """Whether a process of the holder runs on this machine."""
        return bool(self.processes_here())


#: The variable the main process sets to its run's id, which its jobs inherit.
RUN_VARIABLE = "ETM_RUN"


def processes_of_run(run: str) -> list[int]:
    """The processes on this machine whose environment says they belong to a run (none
    where there is no ``/proc`` to tell)."""
    marker, found = f"{RUN_VARIABLE}={run}".encode(), []
    with contextlib.suppress(OSError), os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit():
                with contextlib.suppress(OSError), open(f"{entry.path}/environ", "rb") as stream:
                    if marker in stream.read().split(b"\0"):
                        found.append(int(entry.name))
    return found


#: What a lock holds: its holder and the version it was read at (S3 ETag, or local text).
Read = tuple[Holder, str]

#: The Batch jobs of a gone holder that have not ended: how many, and the line saying how
#: to cancel them (``etm.batch.unended``).
Unended = Callable[[Holder], str | None]


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
        # "/" stays "/": its lock is not the working directory's.
        self.prefix, self.on_s3, self.label = prefix.rstrip("/") or prefix[:1], on_s3, label
        self.held: Read | None = None

    def _key(self) -> tuple[str, str]:
        return s3.split(f"{self.prefix}/{LOCK_NAME}")

    def _path(self) -> str:
        return os.path.join(self.prefix, LOCK_NAME)

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[None]:
        """Locally, no other process takes over or releases this lock meanwhile: an
        ``flock`` of the output folder itself, which leaves no file behind."""
        os.makedirs(self.prefix, exist_ok=True)
        folder = os.open(self.prefix, os.O_RDONLY)
        try:
            fcntl.flock(folder, fcntl.LOCK_EX)
            yield
        finally:
            os.close(folder)

    # The storage: create, read, replace and remove the lock document, atomically.
    def _create(self, document: str) -> str | None:
        """The new lock's version, or None if there is a lock."""
        if self.on_s3:
            bucket, key = self._key()
            try:
                put = s3.client().put_object(
                    Bucket=bucket, Key=key, Body=document.encode(), IfNoneMatch="*"
                )
            except ClientError as error:
                if error.response["Error"]["Code"] in ("PreconditionFailed", "412"):
                    return None
                raise
            return put["ETag"]
        os.makedirs(self.prefix, exist_ok=True)
        # Written aside, then linked into place: an interrupt never leaves an empty lock.
        written = partial_path(self._path())
        try:
            with open(written, "x") as stream:
                stream.write(document)
            os.link(written, self._path())
        except FileExistsError:
            return None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(written)
        return document

    def read(self) -> Read | None:
        """The run holding the lock and the lock's version, or None if there is no lock."""
        try:
            if self.on_s3:
                bucket, key = self._key()
                found = s3.client().get_object(Bucket=bucket, Key=key)
                text = found["Body"].read(MAX_LOCK_BYTES).decode(errors="replace")
                version = found["ETag"]
            else:
                text = version = self._read_file()
        except FileNotFoundError:
            return None
        except (IsADirectoryError, NotADirectoryError) as error:  # a file above the lock
            raise OutputLockedError(
                f"cannot read the lock {self._path()} ({error.strerror}): the output prefix "
                "must be a folder, and its lock a file; remove what is in the way"
            ) from None
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        return Holder.parse(text), version

    def _read_file(self) -> str:
        """The local lock's text. Neither a link nor a pipe is followed or waited on: only
        a regular file is a lock etm wrote."""
        try:
            descriptor = os.open(self._path(), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as error:
            if error.errno != errno.ELOOP:
                raise
            kind = "a symbolic link"
        else:
            mode = os.fstat(descriptor).st_mode
            if stat.S_ISREG(mode):
                with os.fdopen(descriptor, errors="replace") as stream:
                    return stream.read(MAX_LOCK_BYTES)
            os.close(descriptor)
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise OutputLockedError(
            f"cannot read the lock {self._path()} ({kind}): the output prefix must be a "
            "folder, and its lock a file; remove what is in the way"
        )

    def holder(self) -> Holder | None:
        """The run holding the lock, or None."""
        found = self.read()
        return found[0] if found else None

    def _replace(self, version: str, document: str) -> str | None:
        """Put ``document`` in place of the lock read at ``version``: its new version, or
        None if the lock is no longer that one."""
        if self.on_s3:
            bucket, key = self._key()
            try:
                put = s3.client().put_object(
                    Bucket=bucket, Key=key, Body=document.encode(), IfMatch=version
                )
            except ClientError as error:
                if error.response["Error"]["Code"] in ("PreconditionFailed", "412", "NoSuchKey"):
                    return None
                raise
            return put["ETag"]
        with self._guarded():
            found = self.read()
            if found is None or found[1] != version:
                return None
            partial = f"{self._path()}.{uuid.uuid4().hex[:12]}.partial"
            try:
                with open(partial, "w") as stream:
                    stream.write(document)
                os.replace(partial, self._path())
            finally:
                if os.path.exists(partial):
                    os.remove(partial)
        return document

    def _remove(self, version: str) -> bool:
        """Remove the lock if it is still the one read at ``version``."""
        if self.on_s3:
            bucket, key = self._key()
            try:
                s3.client().delete_object(Bucket=bucket, Key=key, IfMatch=version)
            except ClientError as error:
                if error.response["Error"]["Code"] in ("PreconditionFailed", "412", "NoSuchKey"):
                    return False
                raise
            return True
        with self._guarded():
            found = self.read()
            if found is None or found[1] != version:
                return False
            os.remove(self._path())
        return True

    def acquire(self, me: Holder | None = None, unended: Unended | None = None) -> str | None:
        """Take the lock for this run.

        Parameters
        ----------
        me : Holder, optional
            This run (default: :meth:`Holder.this_run`).
        unended : callable, optional
            For a gone holder that ran containers on AWS Batch, a line saying which have not
            ended and how to cancel them, or None: the lock is taken over only then.

        Returns
        -------
        str or None
            A note when a lock left by a killed run on this machine was taken over.

        Raises
        ------
        OutputLockedError
            Naming the run that holds it, and how to clear it if that run is gone.
        """
        note = self._take(me or Holder.this_run(), unended)
        try:
            overlapping = self._overlapping()
        except (BotoCoreError, ClientError, OSError) as error:
            raise self._given_back(
                f"cannot lock the output prefix {self.label}: {one_line(error)}"
            ) from None
        except OutputLockedError as error:
            raise self._given_back(str(error)) from None
        if overlapping is not None:
            folder, other = overlapping
            raise self._given_back(
                f"output prefix {self.label} overlaps {folder}, which is being written by "
                f"{other.describe()}; one run at a time writes a folder and the folders in "
                f"it: wait for it, or, if that run is gone, remove its lock: etm unlock {folder}"
            )
        return note

    def _given_back(self, problem: str) -> OutputLockedError:
        """Release the lock just taken, for a run refused after all: the error to raise,
        saying how to remove the lock if it could not be."""
        try:
            self.release()
        except LockLostError:  # another run's now: not ours to remove
            pass
        except (BotoCoreError, ClientError, OSError):
            problem += f"; its lock was not removed: remove it with: etm unlock {self.label}"
        return OutputLockedError(problem)

    def _overlapping(self, inside: bool = True) -> tuple[str, Holder] | None:
        """A folder holding this prefix, or inside it, that a run not gone from this
        machine is writing (its lock is there), and that run. Locally, links are followed.
        Without ``inside``: a folder holding it, or itself (a folder another run writes)."""
        if self.on_s3:
            bucket, key = s3.split(self.prefix)
            lock, levels = f"/{LOCK_NAME}", key.split("/")
            above = [f"{bucket}/{'/'.join(levels[:n])}".rstrip("/") for n in
                     range(len(levels) - inside, -1, -1)]  # fmt: skip
            pages = (
                s3.client()
                .get_paginator("list_objects_v2")
                .paginate(Bucket=bucket, Prefix=f"{key}/")
            )
            below = (
                f"{bucket}/{found['Key'].removesuffix(lock)}"
                for page in pages
                for found in page.get("Contents", ())
                if found["Key"].endswith(lock) and found["Key"] != f"{key}{lock}"
            )
        else:
            here = os.path.realpath(self.prefix)
            above, folder = ([] if inside else [here]), here
            while (parent := os.path.dirname(folder)) != folder:
                above.append(parent)
                folder = parent
            below = (
                root for root, _, files in os.walk(here) if root != here and LOCK_NAME in files
            )
        for folder in (*above, *(below if inside else ())):
            other = OutputLock(folder, on_s3=self.on_s3, label=folder)
            if self.on_s3 or os.path.lexists(other._path()):
                try:
                    found = other.holder()
                except ClientError as error:  # a grant for this prefix only: not ours to check
                    if error.response["Error"]["Code"] not in ("AccessDenied", "403"):
                        raise
                    continue
                if found is not None and not found.is_gone():
                    return (f"s3://{folder}" if self.on_s3 else folder), found
        return None

    def check_apart(self, folders: list[tuple[str, str, bool]]) -> None:
        """Refuse, releasing this lock, while a run not gone writes an output prefix that
        holds one of the folders this run keeps (its reports, logs, work area on S3).

        Parameters
        ----------
        folders : list of tuple
            What each is (``reports_dir``), the folder (``bucket/prefix`` on S3), and
            whether it is on S3.

        Raises
        ------
        OutputLockedError
        """
        for what, folder, on_s3 in folders:
            try:
                found = OutputLock(folder, on_s3=on_s3, label=folder)._overlapping(inside=False)
            except (BotoCoreError, ClientError, OSError) as error:
                raise self._given_back(
                    f"cannot check the {what} {folder}: {one_line(error)}"
                ) from None
            if found is not None:
                other, holder = found
                raise self._given_back(
                    f"the {what} {folder} is inside the output prefix {other}, which is being "
                    f"written by {holder.describe()}; keep it apart from every output prefix"
                )

    def _take(self, me: Holder, unended: Unended | None) -> str | None:
        """Take the lock (:meth:`acquire`, but for overlapping prefixes)."""
        document = json.dumps(asdict(me))
        try:
            version = self._create(document)
            if version is not None:
                self.held = me, version
                return None
            found = self.read()
            if found is None:  # released meanwhile: one more try, as the first run
                version = self._create(document)
                found = None if version is not None else self.read()
                if found is None and version is not None:
                    self.held = me, version
                    return None
            if found is None:
                raise OutputLockedError(f"output prefix {self.label}: another run took the lock")
            other, read_version = found
            if not other.is_gone():
                raise OutputLockedError(
                    f"output prefix {self.label} is being written by {other.describe()}; "
                    "wait for it to finish, or, if that run is gone, remove its lock: "
                    f"etm unlock {self.label}"
                )
            running = unended(other) if unended and other.batch else None
            if running:
                raise OutputLockedError(
                    f"output prefix {self.label} was being written by {other.describe()}, "
                    f"which is gone, but {running}"
                )
            version = self._replace(read_version, document)
        except (BotoCoreError, ClientError, OSError) as error:
            raise OutputLockedError(
                f"cannot lock the output prefix {self.label}: {one_line(error)}; check the "
                f"access to it (etm writes {LOCK_NAME} there while a run writes)"
            ) from None
        if version is None:
            raise OutputLockedError(
                f"output prefix {self.label}: another run took over the lock left by "
                f"{other.describe()} first"
            )
        self.held = me, version
        return f"took over the lock of {self.label} left by {other.describe()}"

    def release(self) -> None:
        """Give the lock back, if this run still holds it (safe to call more than once).

        Raises
        ------
        LockLostError
            If the lock is no longer the one this run took: removed or taken meanwhile.
        """
        if self.held is None:
            return
        held, self.held = self.held, None
        if not self._remove(held[1]):
            raise LockLostError(
                f"the lock of {self.label} was removed or replaced while this run wrote (etm "
                "unlock --force, or from another host): another run may have written there "
                "too; check that no other run is writing, then run again to redo what it "
                "changed"
            )
