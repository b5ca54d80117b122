"""Published files appear whole or not at all: each is written under a hidden name beside
its destination, then renamed into place."""

from __future__ import annotations

import os
import shutil
import uuid


def partial_path(destination: str) -> str:
    """The hidden name a file is written under before it is published, unique to this call."""
    folder, name = os.path.split(destination)
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex[:12]}.partial")


def write_whole(text: str, path: str) -> None:
    """Write a text file whole or not at all."""
    partial = partial_path(path)
    try:
        with open(partial, "w") as stream:
            stream.write(text)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def copy_whole(source: str, destination: str) -> None:
    """Copy a file whole or not at all."""
    partial = partial_path(destination)
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, destination)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
