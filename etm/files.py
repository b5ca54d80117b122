"""Published files appear whole or not at all: each is written under a hidden name beside
its destination, then renamed into place."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator


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
        yield partial
        os.replace(partial, destination)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def write_whole(text: str, path: str) -> None:
    """Write a text file whole or not at all."""
    with whole(path) as partial, open(partial, "w") as stream:
        stream.write(text)


def copy_whole(source: str, destination: str) -> None:
    """Copy a file whole or not at all."""
    with whole(destination) as partial:
        shutil.copyfile(source, partial)
