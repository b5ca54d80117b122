"""The tutorial's commands, run as a newcomer runs them (docs/tutorial.md).

Every ``bash`` block of the page is run, in order, in a copy of the repository (the files
git tracks or would track, with this checkout's .venv and built map page, so that nothing
is installed again); each must exit 0, and a ``text`` block right after one holds lines its
output must contain. So the page cannot go stale: a command that breaks, or prints
something else than the page shows, fails this test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow

TUTORIAL = REPO / "docs" / "tutorial.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(page: str) -> list[tuple[str, str | None]]:
    """The page's commands: each ``bash`` block, with the ``text`` block right after it
    (what its output must contain), if any."""
    fences = [(m.group(1), m.group(2), m.start(), m.end()) for m in FENCE.finditer(page)]
    found = []
    for i, (kind, body, _start, end) in enumerate(fences):
        if kind != "bash":
            continue
        following = fences[i + 1] if i + 1 < len(fences) else None
        expected = None
        if following and following[0] == "text" and not page[end : following[2]].strip():
            expected = following[1]
        found.append((body, expected))
    return found


def test_every_command_block_of_the_tutorial_is_bash():
    """A command in a block of another kind would escape the test."""
    kinds = {m.group(1) for m in FENCE.finditer(TUTORIAL.read_text())}
    assert kinds <= {"bash", "text"}, kinds
    assert len(blocks(TUTORIAL.read_text())) >= 8


def test_blocks_pair_each_command_with_the_output_after_it():
    page = "```bash\nls\n```\n\n```text\na\n```\n\nprose\n\n```bash\nfalse\n```\n"
    assert blocks(page) == [("ls\n", "a\n"), ("false\n", None)]


def checkout(destination: Path) -> Path:
    """A copy of the repository as a fresh clone has it, plus this checkout's .venv (linked)
    and built map page, with their times kept, so that make finds them up to date."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    shutil.copytree(REPO / "web" / "dist", destination / "web" / "dist")
    (destination / ".venv").symlink_to(REPO / ".venv")
    return destination


def test_the_tutorial_runs_from_a_fresh_clone_to_a_month_of_ones_own_chips(tmp_path):
    if not (REPO / "web" / "dist" / "map.js").exists():
        pytest.fail("the map page is not built: run `make web` (make test does)")
    if subprocess.run(["make", "-q", ".venv/installed"], cwd=REPO).returncode != 0:
        pytest.fail(".venv is not up to date: run `make .venv/installed` (make test does)")
    root = checkout(tmp_path / "etm")
    # The commands run as in a terminal: no pytest or xdist variables, nor those of the
    # make that runs the tests.
    outer = ("PYTEST", "COV_", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
    env = {k: v for k, v in os.environ.items() if not k.startswith(outer)}
    for command, expected in blocks(TUTORIAL.read_text()):
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            cwd=root, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"$ {command}\n{output[-4000:]}"
        for line in (expected or "").splitlines():
            assert line.strip() in output, f"$ {command}\nprints no {line!r}:\n{output[-4000:]}"
    assert (root / "my-cogs" / "mosaic" / "etasw" / "2020" / "etasw_202007.tif").is_file()
    assert (root / "my-cogs" / "catalog.json").is_file()
    assert (root / "etasw_2020.png").stat().st_size > 10_000
