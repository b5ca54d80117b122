"""The listing layer: the only code that knows how prefixes are stored.

A prefix is written the same way whatever the storage: a local directory path, or
``bucket/prefix`` when Snakemake's default storage provider is S3. Everything above
this module works on :class:`StoredObject` records, one listing per prefix.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from etm.errors import StorageError


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One stored file: its path as the config spells it, its size and modification time,
    and its identity: on S3 its ETag (the MD5 of its bytes, for an object stored in one
    part), locally its status (see :func:`local_identity`)."""

    path: str
    size: int
    mtime: float
    etag: str | None = None
    #: Locally, :func:`local_identity` of the file.
    status: str | None = None

    @property
    def identity(self) -> str:
        """What changes whenever the object's bytes may have: ``etag:<ETag>`` on S3, else
        :func:`local_identity`."""
        return f"etag:{self.etag}" if self.etag is not None else self.status or ""


def local_identity(stat: os.stat_result) -> str:
    """A local file's identity: inode, size, and modification and change times in ns.

    The change time (ctime) moves whenever the file is written and cannot be set back, so
    a rewrite that keeps an older modification time (``cp -p``, ``rsync -a``) still
    changes it.
    """
    return f"stat:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"


def join(prefix: str, *parts: str) -> str:
    """Join a prefix and relative parts with '/', whatever the storage.

    Parameters
    ----------
    prefix : str
        A prefix, with or without a trailing slash.
    *parts : str
        Relative path parts.

    Returns
    -------
    str
    """
    return "/".join([prefix.rstrip("/"), *parts])


class Listing(Protocol):
    """What the inventory needs from a storage: recursive listings of prefixes."""

    def walk(self, prefix: str) -> Iterator[StoredObject]:
        """Every object under ``prefix``, at any depth."""
        ...

    def folders(self, prefix: str) -> list[str]:
        """Names of the folders directly under ``prefix``."""
        ...


class LocalListing:
    """Listings of local directories with ``os.scandir`` (one call per directory)."""

    def walk(self, prefix: str) -> Iterator[StoredObject]:
        """Every file under a directory, at any depth; nothing if it does not exist.

        Symbolic links are followed (a run split across folders may be linked together).

        Parameters
        ----------
        prefix : str
            A directory path, absolute or relative to the working directory.

        Yields
        ------
        StoredObject
            With ``path`` spelled as ``prefix`` joined with the relative path.

        Raises
        ------
        StorageError
            Naming the path, for a symbolic link loop or an unreadable entry.
        """
        # Depth first from a stack: each file passes through one generator, not one per
        # folder level (a million chip files are five levels deep).
        stack = [(prefix, frozenset())]
        while stack:
            folder, above = stack.pop()
            try:
                identity = os.stat(folder or ".")
                entries = list(os.scandir(folder or "."))
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as error:
                raise StorageError(f"cannot list {folder}: {error.strerror}") from None
            here = (identity.st_dev, identity.st_ino)
            if here in above:
                raise StorageError(
                    f"{folder} is a symbolic link loop (it leads back to a folder above it); "
                    "remove the link"
                )
            folders, base = [], join(folder, "")
            for entry in entries:
                path = base + entry.name
                try:
                    if entry.is_dir(follow_symlinks=True):
                        folders.append((path, above | {here}))
                    elif entry.is_file(follow_symlinks=True):
                        stat = entry.stat(follow_symlinks=True)
                        yield StoredObject(
                            path, stat.st_size, stat.st_mtime, status=local_identity(stat)
                        )
                except OSError as error:
                    raise StorageError(
                        f"cannot read {path}: {error.strerror}; remove or fix it"
                    ) from None
            stack.extend(reversed(folders))

    def folders(self, prefix: str) -> list[str]:
        """Names of the subdirectories of a directory; empty if it does not exist.

        Parameters
        ----------
        prefix : str
            A directory path.

        Returns
        -------
        list of str
        """
        try:
            return [e.name for e in os.scandir(prefix or ".") if e.is_dir(follow_symlinks=True)]
        except (FileNotFoundError, NotADirectoryError):
            return []
