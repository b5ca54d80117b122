"""Published files appear whole or not at all: each is written under a hidden name beside
its destination, then renamed into place."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from etm.errors import OutputError

#: What :func:`partial_path` names, and what is left of it after a killed write.
PARTIAL = re.compile(r"^\..+\.[0-9a-f]{12}\.partial$")
#: A job's scratch folder (etm.cog.build_cog), named after its process.
SCRATCH = re.compile(r"^etm-(?P<pid>[0-9]+)-")


def partial_path(destination: str) -> str:
    """The hidden name a file is written under before it is published, unique to this call."""
    folder, name = os.path.split(destination)
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex[:12]}.partial")


@contextlib.contextmanager
def whole(destination: str) -> Iterator[str]:
    """A hidden path to write the destination under: renamed into place when the block
    ends, removed if it raises."""
    partial = partial_path(destination)
    try:
        # Created now, not after the work: a folder that cannot be written fails at once.
        open(partial, "xb").close()
    except OSError as error:
        raise OutputError(_unwritable(os.path.dirname(partial) or ".", error)) from None
    try:
        yield partial
        os.replace(partial, destination)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


#: What to do about an output folder the run cannot write, by default.
OTHER_OUTPUT = "choose another enduser_cog_output"


def _unwritable(folder: str, error: OSError, remedy: str = OTHER_OUTPUT) -> str:
    """The line saying that an output folder cannot be written, and what to do."""
    reason = error.strerror or type(error).__name__
    return f"output folder {folder} cannot be written ({reason}); make it writable, or {remedy}"


def check_output_folders(folders: Iterable[str], remedy: str = OTHER_OUTPUT) -> None:
    """Refuse output folders the run could not write into, before any job: each must be a
    folder, or not exist yet under a folder, that this user can write.

    Parameters
    ----------
    folders : iterable of str
        Local folders the run writes files into.
    remedy : str
        What else to do than move a file away or make a folder writable.

    Raises
    ------
    OutputError
        Naming the first such path: a file where a folder must be, or a folder that
        cannot be written.
    """
    seen: set[str] = set()
    for folder in folders:
        path = os.path.normpath(folder)
        while not os.path.lexists(path) and os.path.dirname(path) not in ("", path):
            path = os.path.dirname(path)
        if path in seen or not os.path.lexists(path):
            continue
        seen.add(path)
        if not os.path.isdir(path):
            problem = (
                "is a link that leads to no folder (its target is missing, or it loops); fix "
                "or remove the link"
                if os.path.islink(path)
                else "is a file, where the run needs a folder; move the file away"
            )
            raise OutputError(f"output {path} {problem}, or {remedy}")
        if not os.access(path, os.W_OK | os.X_OK):
            denied = PermissionError(errno.EACCES, "permission denied")
            raise OutputError(_unwritable(path, denied, remedy))


def open_regular(path: str) -> BinaryIO:
    """A local file opened for reading, which must be a regular file: a pipe, whose read
    would wait for a writer, or a device is never read.

    Raises
    ------
    OSError
        If it cannot be opened, or is not a regular file.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise OSError(errno.EINVAL, "not a regular file", path)
    return os.fdopen(descriptor, "rb")


def read_regular(path: str, limit: int) -> bytes:
    """Up to ``limit`` bytes of a local regular file (:func:`open_regular`)."""
    with open_regular(path) as stream:
        return stream.read(limit)


def write_whole(text: str, path: str) -> None:
    """Write a text file whole or not at all."""
    with whole(path) as partial, open(partial, "w") as stream:
        stream.write(text)


def copy_whole(source: str, destination: str) -> None:
    """Copy a file whole or not at all."""
    with whole(destination) as partial:
        shutil.copyfile(source, partial)


def scratch_folder(tmpdir: str | None) -> tempfile.TemporaryDirectory:
    """A job's scratch folder under ``tmpdir``, named after this process, so that one left
    by a killed process can be told from one in use (:func:`remove_leftovers`)."""
    return tempfile.TemporaryDirectory(dir=tmpdir, prefix=f"etm-{os.getpid()}-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's; or no pid: not etm's folder
        return True
    return True


def remove_leftovers(folder: str, tmpdir: str, lock_name: str) -> tuple[int, int]:
    """Remove the partial files a killed run left under ``folder`` (only its own run writes
    there: call it under the output's lock), but not in the folders in it that hold a
    ``lock_name`` (other runs' output prefixes), and the scratch folders of processes that
    are gone under ``tmpdir``.

    Returns
    -------
    tuple of int
        Partial files and scratch folders removed.
    """
    partials = 0
    for root, folders, files in os.walk(folder):
        if root != folder and lock_name in files:
            folders.clear()
            continue
        for name in files:
            if PARTIAL.match(name):
                os.remove(os.path.join(root, name))
                partials += 1
    scratch = 0
    for entry in os.scandir(tmpdir) if os.path.isdir(tmpdir) else ():
        match = SCRATCH.match(entry.name)
        if match and entry.is_dir(follow_symlinks=False) and not _alive(int(match["pid"])):
            shutil.rmtree(entry.path, ignore_errors=True)
            scratch += 1
    return partials, scratch
