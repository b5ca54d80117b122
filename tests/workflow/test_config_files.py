"""A config file Snakemake would fail to load, or that would take all memory, and numbers
that are not finite or out of range: one line through the real snakemake command line.

Snakemake reads ``--configfile`` before the Snakefile runs (and copies its mappings,
expanding their aliases); etm checks the file first, from its storage plugin's import
(etm.config.check_snakemake_config_files). No chip is needed: each run stops at its config.
"""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO, snakemake_command

#: A valid config of one tile; the tests add to it or spoil it.
VALID = {
    "products": ["etasw"],
    "start_year": 2020,
    "end_year": 2020,
    "unmosaicked_inputs": ["chips/r50.0_tile6/"],
    "enduser_cog_output": "out/",
}
#: Address space of each snakemake process of the alias bombs: a normal start takes 0.6 GB.
MEMORY_LIMIT = 1 << 30


def limited_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def dry_run(root: Path, content: str | bytes, **options) -> tuple[int, list[str], str]:
    """``snakemake -n`` with a config file of this content: its exit status, its lines on
    stderr but Snakemake's note of the profile, and all it printed."""
    config = root / "my.yaml"
    if isinstance(content, str):
        content = content.encode()
    config.write_bytes(content)
    result = subprocess.run(
        snakemake_command("-n", configfile=config.name),
        cwd=root, capture_output=True, text=True, timeout=60, **options,
    )  # fmt: skip
    lines = [
        line for line in result.stderr.splitlines()
        if not line.startswith("Using workflow specific profile")
    ]  # fmt: skip
    printed = result.stdout + result.stderr
    assert "Traceback" not in printed  # Snakemake prints some on stdout
    return result.returncode, lines, printed


def with_lines(*lines: str) -> str:
    return yaml.safe_dump(VALID) + "".join(f"{line}\n" for line in lines)


@pytest.mark.parametrize(
    "encoding, problem",
    [
        ("utf-16", "it starts with UTF-16's byte-order mark"),
        ("utf-32", "it starts with UTF-32's byte-order mark"),
        ("latin-1", "byte 0xe9 on line 1: Latin-1 or UTF-16?"),
    ],
)
def test_a_config_file_that_is_not_utf8_is_one_line(tmp_path, encoding, problem):
    text = "# The team's caf\u00e9 of chips\n" + yaml.safe_dump(VALID)
    status, lines, _ = dry_run(tmp_path, text.encode(encoding))
    assert status == 1
    assert lines == [
        f"etm error: config file my.yaml: is not UTF-8 text ({problem}); save it as UTF-8"
    ]


def test_a_config_file_with_a_control_character_is_one_line(tmp_path):
    bell = "\x07"
    text = with_lines(f"# a bell {bell} in a comment")
    status, lines, _ = dry_run(tmp_path, text)
    assert status == 1
    assert lines == [
        "etm error: config file my.yaml: cannot be read as YAML (unacceptable character "
        f'#x0007: special characters are not allowed in "my.yaml", position {text.index(bell)})'
    ]


def test_a_key_given_twice_is_one_line(tmp_path):
    # YAML keeps the last silently: a run published where the second line said.
    text = with_lines("enduser_cog_output: elsewhere/")
    line = 1 + text.splitlines().index("enduser_cog_output: out/")
    status, lines, _ = dry_run(tmp_path, text)
    assert status == 1
    assert lines == [
        "etm error: config file my.yaml: key 'enduser_cog_output' is given twice (lines "
        f"{line} and {len(text.splitlines())}); keep one"
    ]
    status, lines, _ = dry_run(tmp_path, '{"products": ["etasw"], "products": ["netet"]}')
    assert (status, lines) == (
        1, ["etm error: config file my.yaml: key 'products' is given twice; keep one"]
    )  # fmt: skip


def test_a_rerun_command_holding_a_password_is_refused_before_any_log_keeps_it(tmp_path):
    text = with_lines("chip_rerun_command: m.sh {chip} https://u:RRSECRET9@h.example/x")
    status, lines, printed = dry_run(tmp_path, text)
    assert status == 1 and "RRSECRET9" not in printed
    assert lines == [
        "etm error: config key 'chip_rerun_command': 'm.sh {chip} https://***@h.example/x' "
        "holds a user or password, which the job logs and Snakemake's records would keep; "
        "pass it in the environment"
    ]


def test_a_config_file_that_is_a_pipe_is_one_line_without_waiting_for_it(tmp_path):
    # A named pipe waited forever for a writer; `--configfile <(cat my.yaml)` was a traceback.
    os.mkfifo(tmp_path / "my.yaml")
    result = subprocess.run(
        snakemake_command("-n", configfile="my.yaml"),
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("etm")] == [
        "etm error: config file my.yaml: is not a regular file; write it to a file"
    ]


def test_a_config_file_larger_than_a_config_is_one_line_without_reading_it(tmp_path):
    # A 50 MB value kept the checks busy for minutes.
    status, lines, _ = dry_run(tmp_path, with_lines(f"license_url: '{'x' * (50 << 20)}'"))
    assert status == 1
    assert lines == [
        "etm error: config file my.yaml: is larger than 1 MiB; a config names products, years "
        "and prefixes: is it the file you meant?"
    ]


def alias_bomb(key: str, depth: int, mappings: bool) -> str:
    """A valid key holding nine aliases of nine aliases ... of nine values: 9**depth."""
    names = "abcdefghi"
    if mappings:
        levels = ["{" + ", ".join(f"{n}: lol" for n in names) + "}"]
        levels += ["{" + ", ".join(f"{n}: *a{i}" for n in names) + "}" for i in range(depth - 1)]
        return with_lines(f"{key}:", *(f"  k{i}: &a{i} {level}" for i, level in enumerate(levels)))
    levels = ["[" + ", ".join(["lol"] * 9) + "]"]
    levels += ["[" + ", ".join([f"*a{i}"] * 9) + "]" for i in range(depth - 1)]
    return with_lines(f"{key}:", *(f"  - &a{i} {level}" for i, level in enumerate(levels)))


@pytest.mark.parametrize("mappings", [False, True], ids=["lists", "mappings"])
def test_an_alias_bomb_is_refused_in_one_line_before_it_is_built(tmp_path, mappings):
    # 387 million values from under 800 bytes. Snakemake copies mappings as it loads them, etm's
    # validation walked lists: without the check, the mappings took all memory in
    # Snakemake's loader, the lists hung the validation (and printed a 226 MB line at
    # depth 8). Here in a gigabyte of address space, within the timeout.
    bomb = alias_bomb("sleep_time", 9, mappings)
    assert len(bomb) - len(with_lines()) < 800
    status, lines, _ = dry_run(tmp_path, bomb, preexec_fn=limited_memory)
    assert status == 1
    assert lines == [
        "etm error: config file my.yaml: holds more than 100,000 values or 20 levels of lists "
        "and mappings, once its aliases (*name) are expanded; write the values out, or "
        "shorten them"
    ]


def test_aliases_within_the_bound_are_read_as_written(tmp_path):
    # The run goes on to list the chips (none are here): 25 chips x 3 months.
    status, lines, _ = dry_run(
        tmp_path,
        with_lines(
            "months: [6, 7, 8]",
            "tiles: {r50.0_tile6: {bounds: [-106.8, 37.4, -96.8, 47.4]}}",
            "plausibility: {ranges: {etasw: &range [0, 1500], netet: *range}}",
            "annual_aggregation: {etasw: &how mean, netet: *how}",
        ),
    )
    assert status == 1
    assert lines[-1].startswith("etm: 75 chip files missing; no job was started"), lines


def test_a_config_file_nested_past_pythons_recursion_limit_is_one_line(tmp_path):
    # Snakemake's YAML loader ended in a RecursionError traceback.
    status, lines, _ = dry_run(tmp_path, with_lines("sleep_time: " + "[" * 5000 + "]" * 5000))
    assert status == 1
    assert lines == ["etm error: config file my.yaml: nested deeper than 20 lists or mappings"]


@pytest.mark.parametrize(
    "line, error",
    [
        ("chip_size_deg: 1.0e-300", "'chip_size_deg': 1e-300 is less than the minimum of 0.1"),
        ("tile_grid: {size_deg: 1.7e+308}",
         "'tile_grid.size_deg': 1.7e+308 is greater than the maximum of 360"),
        ("tiles: {r50.0_tile6: {bounds: [-106.8, 37.4, 1.7e+308, 47.4]}}",
         "'tiles.r50.0_tile6.bounds.2': 1.7e+308 is greater than the maximum of 180"),
    ],
)  # fmt: skip
def test_a_number_off_the_globe_is_one_line(tmp_path, line, error):
    # A chip size that rounds to 0 tenths divided by zero; a number times 10 beyond
    # float's range made to_tenths' round() overflow. NaN and infinities: tests/unit.
    status, lines, _ = dry_run(tmp_path, with_lines(line))
    assert status == 1
    assert lines == [f"etm error: config key {error}"]


def test_a_webhook_url_without_a_scheme_is_refused_without_its_password(tmp_path):
    status, lines, printed = dry_run(
        tmp_path, with_lines("notify: {webhook_url: 'etm-user:S3CRETPW@hooks.example.com/T0'}")
    )
    assert status == 1
    assert lines == [
        "etm error: config key 'notify.webhook_url': '***@hooks.example.com/T0' does not "
        "match '^https?://'"
    ]
    assert "S3CRETPW" not in printed and "etm-user" not in printed


@pytest.mark.parametrize(
    "line, error",
    [
        ("1: 2", "config key 1 under '(top level)': YAML reads it as a number"),
        ("cog: {~: 2}", "config key None under 'cog': YAML reads it as null"),
        ("notify: {true: 1}", "config key True under 'notify': YAML reads it as a boolean"),
        ("tiles: {2020-01-01: x}",
         "config key datetime.date(2020, 1, 1) under 'tiles': YAML reads it as a date"),
    ],
)  # fmt: skip
def test_a_key_that_is_not_text_is_one_line(tmp_path, line, error):
    status, lines, _ = dry_run(tmp_path, with_lines(line))
    assert status == 1
    assert lines == [f"etm error: {error}, not a name; quote it or remove it"]


@pytest.mark.parametrize("license", ["MIT, Apache-2.0", "Not a license", "CC-BY-4.0 ✓"])
def test_a_license_stac_would_not_take_is_one_line(tmp_path, license):
    status, lines, _ = dry_run(tmp_path, with_lines(f"license: '{license}'"))
    assert status == 1
    assert lines == [
        f"etm error: config key 'license': '{license}' does not match '^[A-Za-z0-9_.+-]+$'"
    ]


@pytest.mark.parametrize(
    "output, where",
    [("web", "in the workflow's folder web"), ("web/dist", "in the workflow's folder web"),
     ("etm", "in the workflow's folder etm"), (".", "the workflow's folder")],
)  # fmt: skip
def test_an_output_in_the_workflows_own_folders_is_one_line(tmp_path, output, where):
    # Snakemake removed a failed map page's outputs: web/index.html and web/map.js.
    path = os.path.normpath(REPO / output)
    status, lines, _ = dry_run(tmp_path, yaml.safe_dump({**VALID, "enduser_cog_output": path}))
    assert status == 1
    assert lines == [
        f"etm error: config key 'enduser_cog_output': {path} is {where}; what is published is "
        "kept apart from the workflow's own files, choose another folder"
    ]
