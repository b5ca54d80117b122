"""The workflow configuration: validated against ``config/schema.yaml``, then normalised.

The schema is the documentation of every key; this module turns a validated config
into :class:`Settings`, and a schema violation into one line that names the key.
"""

from __future__ import annotations

import codecs
import copy
import difflib
import hashlib
import io
import json
import math
import os
import posixpath
import re
import reprlib
import shlex
import stat
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import yaml

from etm.errors import ConfigError, one_line, or_exit, without_passwords
from etm.grid import Chip, chips_in_bounds, to_tenths
from etm.urls import SCHEME, masked_url, split_userinfo

if TYPE_CHECKING:  # jsonschema is imported where a config is validated: not in mosaic jobs
    import jsonschema

#: Most tile-periods (tiles x products x years x periods) one run plans: a dry run of the
#: team's 56,160 took 3.6 GB; twice that still fits a 24 GB machine.
MAX_TILE_PERIODS = 120_000
#: Most chip-months (chips x products x years x months) one run plans: the team's tiles
#: hold 25 chips each, so as many tile-months of theirs as MAX_TILE_PERIODS (a dry run of
#: their 1.4 million took 3.6 GB).
MAX_CHIP_MONTHS = 25 * MAX_TILE_PERIODS
#: Most chips x products of one tile: its completeness heatmap draws a row 12 pixels tall
#: for each, and matplotlib draws at most 2**16 pixels.
MAX_TILE_ROWS = 5_000
#: Most chip-months of one tile: its heatmap takes about 4.6 KB for each (an 840 MiB array
#: for 191,172 of them); the team's tiles have 72,000 (25 chips, 12 products, 20 years).
MAX_TILE_CHIP_MONTHS = 200_000
#: Most values (scalars, lists and mappings) a config file may hold, each alias counted as
#: the values it repeats: the team's file holds 23, a tile's `chips` list at most 25.
MAX_CONFIG_VALUES = 100_000
#: Deepest nesting of lists and mappings a config file may have (the schema's is 4).
MAX_CONFIG_DEPTH = 20
#: Largest config file, in bytes: the team's is under 2 KB, and a 50 MB value kept the
#: checks busy for minutes.
MAX_CONFIG_BYTES = 1 << 20
#: The old orchestrator's keys: accepted, with what replaces each.
OBSOLETE_KEYS = {
    "max_cpu_percent": "--cores N caps the cores in flight (the profiles set it)",
    "min_memory_available": "each job declares its memory (mem_mb); --resources mem_mb=N "
    "caps the total",
    "sleep_time": "Snakemake waits for jobs itself (--seconds-between-status-checks on AWS Batch)",
}


@dataclass(frozen=True)
class TileSpec:
    """A tile: its name, every prefix that may hold its chips, and its expected chips.

    ``chips`` is None when the expected chips are discovered from the listing. ``area`` is
    every chip of the tile's configured bounds (unproduced ones included) or chips list:
    where the config places the tile, evidence of the tile grid (empty when not configured).
    """

    name: str
    prefixes: tuple[str, ...]
    chips: tuple[Chip, ...] | None
    area: tuple[Chip, ...] = ()


@dataclass(frozen=True)
class TileGrid:
    """The model's tile squares: their edge in tenths of a degree, and one tile's upper-left
    chip, or None: each tile's square is then learned from the chips found
    (:func:`etm.grid.learn_squares`)."""

    size: int
    origin: Chip | None


@dataclass(frozen=True)
class Plausibility:
    """When a chip is suspect: valid range per product (mm), and the NaN-share jump; and
    how far apart neighbouring chips' values of a shared pixel may be (mm)."""

    ranges: dict[str, tuple[float, float]]
    nan_share_jump: float
    edge_tolerance_mm: float


@dataclass(frozen=True)
class Settings:
    """Everything the workflow needs from the configuration, normalised."""

    products: tuple[str, ...]
    years: tuple[int, ...]
    months: tuple[int, ...]
    tiles: dict[str, TileSpec]
    output: str
    #: The output prefix's own folder name (:func:`output_key`).
    key: str
    missing_chips: str
    chip_size: int
    reports_dir: str
    cog: dict
    gdal_cache_mb: int
    mosaic_threads: int
    jobs_per_container: int
    years_per_container: int
    max_concurrent_containers: int
    annual: bool
    #: Publish each product's months as a Zarr store for time series (:mod:`etm.series`).
    series_store: bool
    annual_aggregation: dict[str, str]
    license: str
    license_url: str | None
    #: Where users read the output prefix (:func:`check_public_url`), or None.
    public_url: str | None
    notify: dict[str, str]
    chip_rerun_command: str | None
    tile_grid: TileGrid
    unproduced: frozenset[Chip]
    suspect_chips: str
    plausibility: Plausibility
    #: One line per accepted key that no longer does anything.
    notes: tuple[str, ...] = ()


def _strict_number(checker, instance) -> bool:
    return isinstance(instance, int | float) and not isinstance(instance, bool)


def _strict_integer(checker, instance) -> bool:
    # JSON Schema counts 2020.0 as an integer; Python code downstream would not.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _with_defaults(validator_class):
    """A validator class that fills each missing property from its schema default, and whose
    integers are Python ints (``2020.0`` is refused)."""
    import jsonschema

    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(key, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    checker = validator_class.TYPE_CHECKER.redefine_many(
        {"integer": _strict_integer, "number": _strict_number}
    )
    return jsonschema.validators.extend(
        validator_class, {"properties": set_defaults}, type_checker=checker
    )


def read_schema(workflow_dir: str | os.PathLike) -> dict:
    """The config's JSON schema, ``config/schema.yaml`` of the workflow."""
    with open(os.path.join(workflow_dir, "config", "schema.yaml")) as stream:
        return yaml.safe_load(stream)


def read_config_file(path: str | os.PathLike) -> dict:
    """A config file's mapping, read as Snakemake reads it (JSON, else YAML), but refusing
    in one line what Snakemake would fail to load with a traceback, or would take all
    memory to load.

    The file must be UTF-8 text. YAML is measured as composed, before anything is built
    from it: at most :data:`MAX_CONFIG_VALUES` values once its aliases are expanded (nine
    aliases of nine aliases ... of a list, nine levels deep, are 387 million values built
    from under 500 bytes), nested at most :data:`MAX_CONFIG_DEPTH` deep, and no alias
    inside its own anchor.

    Raises
    ------
    ConfigError
        One line naming the file and what is wrong.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a pipe: Snakemake reads it once more
            raise ConfigError(f"config file {path}: is not a regular file; write it to a file")
        with open(path, "rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"config file {path}: cannot be read ({error.strerror})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"config file {path}: is larger than {MAX_CONFIG_BYTES // 2**20} MiB; a config "
            "names products, years and prefixes: is it the file you meant?"
        )
    text = _utf8_text(path, data)
    try:
        config = json.loads(text, object_pairs_hook=lambda pairs: _unique(path, pairs))
    except (ValueError, RecursionError):
        config = _yaml_document(path, text)
    else:
        _check_expanded(path, config, _value_children)
    if not isinstance(config, dict):
        found = "empty" if config is None else f"a {type(config).__name__}"
        raise ConfigError(
            f"config file {path}: is {found}, not a mapping of keys like 'products: [etasw]'"
        )
    return config


def _yaml_document(path: str | os.PathLike, text: str) -> object:
    """A YAML document, built only once measured (:func:`_check_expanded`)."""
    stream = io.StringIO(text)
    stream.name = str(path)  # named in YAML's error messages
    try:
        loader = yaml.FullLoader(stream)  # Snakemake's (through yte); a control character fails
    except yaml.YAMLError as error:
        raise _not_yaml(path, error) from None
    try:
        document = loader.get_single_node()
        if document is None:
            return None
        _check_expanded(path, document, _node_children)
        _check_unique_keys(path, document)
        return loader.construct_document(document)  # a 5,000-digit integer: ValueError
    except (yaml.YAMLError, ValueError) as error:
        raise _not_yaml(path, error) from None
    except RecursionError:
        raise ConfigError(
            f"config file {path}: nested deeper than {MAX_CONFIG_DEPTH} lists or mappings"
        ) from None
    finally:
        loader.dispose()


def _check_unique_keys(path: str | os.PathLike, document: yaml.Node) -> None:
    """Refuse a mapping that gives a key twice: YAML keeps the last silently, and a reader
    sees the first."""
    seen: set[int] = set()
    stack = [document]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            lines: dict[str, int] = {}
            for key, _value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    line = key.start_mark.line + 1
                    if key.value in lines:
                        raise ConfigError(
                            f"config file {path}: key {key.value!r} is given twice (lines "
                            f"{lines[key.value]} and {line}); keep one"
                        )
                    lines[key.value] = line
        stack.extend(_node_children(node))


def _unique(path: str | os.PathLike, pairs: list[tuple[str, object]]) -> dict:
    """A JSON object, refused if it gives a key twice (:func:`_check_unique_keys`)."""
    found = dict(pairs)
    if len(found) < len(pairs):
        twice = next(key for key in found if sum(k == key for k, _ in pairs) > 1)
        raise ConfigError(f"config file {path}: key {twice!r} is given twice; keep one")
    return found


def _not_yaml(path: str | os.PathLike, error: Exception) -> ConfigError:
    return ConfigError(f"config file {path}: cannot be read as YAML ({one_line(error)})")


def _utf8_text(path: str | os.PathLike, data: bytes) -> str:
    """A config file's text; a file that is not UTF-8 is refused, saying where."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        problem = "it starts with UTF-32's byte-order mark"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        problem = "it starts with UTF-16's byte-order mark"
    else:
        bad = data.find(b"\0")  # UTF-16 of ASCII text: UTF-8 with a NUL every other byte
        if bad < 0:
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError as error:
                bad = error.start
        line = data.count(b"\n", 0, bad) + 1
        problem = f"byte {data[bad]:#04x} on line {line}: Latin-1 or UTF-16?"
    raise ConfigError(f"config file {path}: is not UTF-8 text ({problem}); save it as UTF-8")


def _check_expanded(path: str | os.PathLike, document: object, children: Callable) -> None:
    """Refuse a document too large or too deep once its aliases are expanded, or with an
    alias inside its own anchor. Each node is measured once (an alias is its anchor's
    node, in the composed YAML), so an alias bomb is measured, never expanded.

    Parameters
    ----------
    document : yaml.Node or object
        Composed YAML, or parsed JSON.
    children : callable
        A node's children (:func:`_node_children`, :func:`_value_children`).
    """
    measured: dict[int, tuple[int, int]] = {}  # node: (values, depth) it stands for
    entered: set[int] = set()  # nodes whose children are being measured: the path down
    stack: list[tuple[object, bool]] = [(document, False)]
    while stack:
        node, children_measured = stack.pop()
        if id(node) in measured:
            continue
        below = children(node)
        if not children_measured:
            if id(node) in entered:
                raise ConfigError(
                    f"config file {path}: an alias (*name) inside its own anchor repeats it "
                    "without end; write the values out"
                )
            entered.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in below)
            continue
        entered.discard(id(node))
        sizes = [measured[id(child)] for child in below]
        values = 1 + sum(count for count, _ in sizes)
        depth = 1 + max((deep for _, deep in sizes), default=0) if below else 0
        if values > MAX_CONFIG_VALUES or depth > MAX_CONFIG_DEPTH:
            raise ConfigError(
                f"config file {path}: holds more than {MAX_CONFIG_VALUES:,} values or "
                f"{MAX_CONFIG_DEPTH} levels of lists and mappings, once its aliases (*name) "
                "are expanded; write the values out, or shorten them"
            )
        measured[id(node)] = values, depth


def _node_children(node: yaml.Node | None) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _value_children(value: object) -> list:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [*value, *value.values()]
    return []


def check_snakemake_config_files() -> None:
    """Have Snakemake check every config file it loads (:func:`read_config_file`) before it
    parses it: ``--configfile`` is read before the Snakefile runs, and Snakemake copies
    its mappings (alias or not) before etm sees them. A refused file is one ``etm error``
    line and exit status 1.

    Snakemake has no hook for this: its loader function is wrapped, once per process, when
    Snakemake imports etm's plugins (at the start of every command line).
    """
    from snakemake.common import configfile

    load = configfile._load_configfile
    if getattr(load, "checked_by_etm", False):
        return

    def checked(configpath_or_obj, filetype="Config"):
        if filetype == "Config" and isinstance(configpath_or_obj, str | os.PathLike):
            or_exit(read_config_file, configpath_or_obj)
        return load(configpath_or_obj, filetype)

    checked.checked_by_etm = True
    configfile._load_configfile = checked


def describe_violation(error: jsonschema.ValidationError) -> str:
    """One line naming the offending key, with a suggestion for a misspelt one.

    Parameters
    ----------
    error : jsonschema.ValidationError

    Returns
    -------
    str
    """
    where = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "required":
        key = error.message.split("'")[1]
        full = f"{where}.{key}" if where else key
        described = error.schema["properties"][key].get("description", "").split(".")[0]
        return f"config: missing key '{full}' ({described}); add it to your config file"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        key = unknown[0]
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(allowed)}"
        full = f"{where}.{key}" if where else key
        return f"config: unknown key '{full}'{hint}"
    message = error.message.replace(repr(error.instance), _QUOTED.repr(error.instance))
    return f"config key '{where or '(top level)'}': {message}"


class _Quoted(reprlib.Repr):
    """A config value as an error quotes it: shortened, and a string as a URL without its
    user and password (``user:password@host``, with or without a scheme)."""

    def repr_str(self, value: str, level: int) -> str:
        return super().repr_str(masked_url(value), level)


_QUOTED = _Quoted()
_QUOTED.maxstring, _QUOTED.maxlevel = 80, 2


#: What YAML makes of a key that is not text (``1:``, ``~:``, ``true:``, ``2020-01-01:``).
_YAML_KINDS = {"int": "a number", "float": "a number", "bool": "a boolean", "NoneType": "null",
               "date": "a date", "datetime": "a date"}  # fmt: skip


def check_plain(value: object, key: str = "") -> None:
    """Refuse NaN and infinities anywhere in a config, and keys that are not text: YAML
    reads ``.nan`` and ``.inf`` as numbers, which pass a schema's bounds (every comparison
    with NaN is false) and would turn a check off, and ``1:``, ``~:`` or ``true:`` as keys
    that are a number, null or a boolean.

    Raises
    ------
    ConfigError
        Naming the key (``plausibility.ranges.etasw.0``).
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key '{key}': {value} is not a finite number; write a number")
    if isinstance(value, dict):
        for name in value:
            if not isinstance(name, str):
                kind = _YAML_KINDS.get(type(name).__name__, "not text")
                raise ConfigError(
                    f"config key {_QUOTED.repr(name)} under '{key or '(top level)'}': YAML "
                    f"reads it as {kind}, not a name; quote it or remove it"
                )
    if isinstance(value, dict | list):
        children = value.items() if isinstance(value, dict) else enumerate(value)
        for name, child in children:
            check_plain(child, f"{key}.{name}" if key else str(name))


def validate(config: dict, schema: dict) -> None:
    """Validate a config in place, filling schema defaults.

    Parameters
    ----------
    config : dict
        The config as Snakemake loaded it; missing keys are set to their defaults.
    schema : dict
        The JSON schema (``config/schema.yaml``).

    Raises
    ------
    ConfigError
        On the most relevant violation, as one line.
    """
    import jsonschema

    check_plain(config)
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(describe_violation(error))


#: A tile's folder name as etm takes it: a folder, an S3 key, a URL and a Snakemake wildcard
#: all spell it as it is.
PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")


def tile_name(prefix: str) -> str:
    """The tile a normalised prefix (:func:`normalised_prefix`) holds: its last folder,
    e.g. ``r50.0_tile6``.

    Raises
    ------
    ConfigError
        If that folder's name is not a plain one: letters, digits, ``_``, ``.``, ``+`` and
        ``-``, not starting with ``.``, ``+`` or ``-``.
    """
    name = prefix.rsplit("/", 1)[-1]
    if not PLAIN_NAME.fullmatch(name):
        raise ConfigError(
            f"config key 'unmosaicked_inputs': {prefix} holds tile {name!r}, which is not a "
            "plain folder name (letters, digits, '_', '.', '+', '-'; not starting with '.', "
            "'+' or '-'); rename the tile's folder"
        )
    return name


def _folder_problem(folder: str) -> str | None:
    """Why a folder of a prefix cannot be one, or None."""
    if folder in ("", ".", ".."):
        return f"has {'an empty folder name' if not folder else f'a folder named {folder!r}'}"
    if folder != folder.strip():
        return f"has a folder name that begins or ends in whitespace ({folder!r})"
    for character in folder:
        kind = unicodedata.category(character)
        if kind[0] == "C" or kind in ("Zl", "Zp") or (kind == "Zs" and character != " "):
            return (
                f"has a folder name holding U+{ord(character):04X}, a control, invisible or "
                f"unusual space character ({folder!r})"
            )
    return None


def normalised_prefix(key: str, path: str, local: bool) -> str:
    """A prefix spelt one way: without trailing slashes; locally also without repeated
    slashes or a leading ``./``.

    Parameters
    ----------
    key : str
        The config key that gives it.
    path : str
        A local folder, or ``bucket/prefix`` on S3 (:func:`without_scheme`).
    local : bool

    Returns
    -------
    str

    Raises
    ------
    ConfigError
        Naming the key, when the prefix names no folder, or a folder of it is ``.`` or
        ``..`` (but for the leading ``./`` and ``../`` of a local relative path), empty (on
        S3) or begins or ends in whitespace: a folder the workflow would read or publish
        elsewhere than it says (``pubts/ /``; a tile named ``..``). On S3, its bucket must
        be a bucket name (never quoting a password written before it).
    """
    if not local:
        check_bucket(f"config key '{key}'", path.rstrip("/"))
    absolute = local and path.startswith("/")
    folders = [f for f in path.split("/") if f] if local else path.strip("/").split("/")
    while local and folders[:1] == ["."]:
        folders.pop(0)
    above = 0
    while local and not absolute and folders[above : above + 1] == [".."]:
        above += 1
    if local and not absolute and folders[:1] and folders[0].startswith(("~", "$")):
        raise ConfigError(
            f"config key '{key}': {path!r} begins with {folders[0][0]!r}, which only a shell "
            "expands; write the folder's whole path"
        )
    for folder in folders[above:]:
        if problem := _folder_problem(folder):
            raise ConfigError(
                f"config key '{key}': {path!r} {problem}; write the prefix without it, or "
                "rename the folder"
            )
    if len(folders) == above:
        raise ConfigError(f"config key '{key}': {path!r} names no folder")
    return ("/" if absolute else "") + "/".join(folders)


def without_scheme(key: str, path: str, local: bool) -> str:
    """A prefix as the workflow names it: ``s3://bucket/prefix`` is ``bucket/prefix`` on S3.

    Raises
    ------
    ConfigError
        For an ``s3://`` prefix in a local run (no default storage provider), or a URL of
        another scheme (``https://``), shown without its user and password.
    """
    if (scheme := SCHEME.match(path)) and scheme[0].lower() != "s3://":
        raise ConfigError(
            f"config key '{key}': {masked_url(path)} is a {scheme[0]} URL; a prefix is a local "
            "folder or s3://bucket/prefix"
        )
    if not path.startswith("s3://"):
        return path
    if local:
        raise ConfigError(
            f"config key '{key}': {path} is on S3, and this run reads and writes local "
            "folders; run with --profile profiles/ec2 (or profiles/aws)"
        )
    return path.removeprefix("s3://")


def resolved(path: str, local: bool) -> str:
    """A prefix as a folder to compare with others: symlinks and ``..`` resolved, absolute
    (local), or normalised ``bucket/prefix`` (S3); always with one trailing slash."""
    if local:
        return os.path.realpath(path) + "/"
    return posixpath.normpath(path.lstrip("/")) + "/"


#: The workflow's own folders (sources, the map page's, its environment, Snakemake's): a run
#: publishing into one would overwrite them, and Snakemake removes a failed job's outputs.
#: Not benchmarks/, whose runs publish under benchmarks/cache/.
WORKFLOW_FOLDERS = (
    ".git", ".snakemake", ".venv", "config", "docs", "envs", "etm", "examples", "profiles",
    "rules", "scripts", "site", "tests", "web",
)  # fmt: skip


def check_apart_from_workflow(output: str, workflow_folder: str) -> None:
    """Refuse a local output prefix that is, holds or lies inside one of the workflow's own
    folders (:data:`WORKFLOW_FOLDERS`).

    Raises
    ------
    ConfigError
    """
    published = resolved(output, local=True)
    inside = [
        name for name in WORKFLOW_FOLDERS
        if published.startswith(resolved(os.path.join(workflow_folder, name), local=True))
    ]  # fmt: skip
    if inside or resolved(workflow_folder, local=True).startswith(published):
        where = f"in the workflow's folder {inside[0]}" if inside else "the workflow's folder"
        raise ConfigError(
            f"config key 'enduser_cog_output': {output} is {where}; what is published is "
            "kept apart from the workflow's own files, choose another folder"
        )


def check_prefixes(inputs: list[str], output: str, reports_dir: str, local: bool) -> None:
    """Refuse braces in a prefix (and on S3 ``?`` and ``#``), a prefix listed twice, and
    writing where chips are.

    Paths are compared resolved: an absolute output path inside a relative input prefix,
    or a symbolic link to it, is inside it.

    Raises
    ------
    ConfigError
        Naming the key and the prefixes.
    """
    written = {"enduser_cog_output": output}
    if local:  # reports are always local files: only local chips can be under them
        written["reports_dir"] = reports_dir
    for key, path in [*(("unmosaicked_inputs", p) for p in inputs), *written.items()]:
        if "{" in path or "}" in path:
            raise ConfigError(
                f"config key '{key}': {path} has a brace; Snakemake would read it as a "
                "wildcard: rename the folder"
            )
        if not local and ("?" in path or "#" in path):
            raise ConfigError(
                f"config key '{key}': {path} has a '?' or '#'; Snakemake would read an S3 "
                "path's query or fragment there: rename the folder"
            )
    seen: dict[str, str] = {}
    for prefix in inputs:
        folder = resolved(prefix, local)
        if folder in seen:
            raise ConfigError(
                f"config key 'unmosaicked_inputs': {prefix} is listed twice "
                f"(also as {seen[folder]}); list each prefix once"
            )
        seen[folder] = prefix
    for key, path in written.items():
        mine = resolved(path, local)
        for folder, prefix in seen.items():
            if mine.startswith(folder) or folder.startswith(mine):
                raise ConfigError(
                    f"config key '{key}': {path} overlaps the input prefix {prefix}; the "
                    "workflow never writes where chips are, choose another folder"
                )
    if local:  # what a run keeps beside what it publishes: its reports and (etm.plan.LOGS) logs
        published = resolved(output, local)
        for what, path in (("the reports_dir", reports_dir), ("the log folder", "logs")):
            kept = resolved(path, local)
            if published.startswith(kept) or kept.startswith(published):
                raise ConfigError(
                    f"config key 'enduser_cog_output': {output} overlaps {what} {path}; what "
                    "is published is kept apart from reports and logs, choose another folder"
                )


#: Marks a profile value still to be filled in (profiles/aws, profiles/ec2).
PLACEHOLDER = "FILL-IN"


def check_placeholder(key: str, value: str | None) -> None:
    """Refuse a profile value that is still the profile's placeholder.

    Raises
    ------
    ConfigError
    """
    if value and PLACEHOLDER in value:
        raise ConfigError(
            f"profile key '{key}' is still the placeholder {value!r}; fill it in (docs/aws.md, "
            "6. The profile, and the run)"
        )


def check_work_prefix(prefix: str | None) -> None:
    """Refuse a ``default-storage-prefix`` that is still the profiles' placeholder, or that
    is no S3 prefix (a user or password before its bucket, which the storage would quote).

    Raises
    ------
    ConfigError
    """
    key = "default-storage-prefix"
    check_placeholder(key, prefix)
    if prefix:
        check_bucket(f"profile key '{key}'", prefix.removeprefix("s3://"))


def check_bucket(setting: str, path: str) -> None:
    """Refuse an S3 ``bucket/prefix`` whose bucket is no bucket name, naming the setting.

    Raises
    ------
    ConfigError
        Never quoting a user or password written before the bucket.
    """
    from etm import s3  # boto3: only runs on S3 need it

    try:
        s3.split(path)
    except ConfigError as error:
        raise ConfigError(f"{setting}: {error}") from None


def output_key(output: str, local: bool) -> str:
    """A folder name for one output prefix and no other, under which a run keeps its reports,
    logs and chip baselines: the prefix with ``/`` as ``_`` (a local one relative to the
    working directory when inside it), and 8 hex digits of the SHA-256 of where it is (the
    resolved local folder, or ``s3://bucket/prefix``), so that ``pub/x`` and ``pub_x``, or
    ``/data/out`` and ``data/out``, never share one."""
    if local:  # one folder however it is written: relative, absolute, through a link
        where = os.path.realpath(output)
        inside = os.path.relpath(where)
        output = where if inside.startswith("..") else inside
    else:
        where = f"s3://{resolved(output, local).rstrip('/')}"
    readable = "_".join(part for part in output.split("/") if part not in ("", "."))
    return f"{readable[:80]}-{hashlib.sha256(where.encode()).hexdigest()[:8]}"


def obsolete_notes(config: dict) -> tuple[str, ...]:
    """One line per key of the old orchestrator in the config: accepted, without effect."""
    return tuple(
        f"config key '{key}' is from the old orchestrator and has no effect: {instead}"
        for key, instead in OBSOLETE_KEYS.items()
        if config.get(key) is not None
    )


def license_notes(config: dict) -> tuple[str, ...]:
    """A line when STAC readers cannot find the published data's license terms."""
    if config["license"] == "other" and not config["license_url"]:
        return (
            "config key 'license' is 'other' and 'license_url' is not set: the STAC "
            "Collections link no license terms; set license_url (or an SPDX license)",
        )
    return ()


#: The schemes of a ``public_url``: those GDAL, hence odc-stac and stackstac, read by range
#: requests.
PUBLIC_SCHEMES = ("https", "http", "s3")


def check_published(key: str, url: str) -> str:
    """A URL that every reader of the catalog sees, as it is.

    Raises
    ------
    ConfigError
        Naming the key, never quoting a password: for a user or password in it.
    """
    if split_userinfo(url)[1] is not None or without_passwords(url) != url:
        raise ConfigError(
            f"config key '{key}': {without_passwords(masked_url(url))} holds a user, password "
            "or token, which every reader of the catalog would see; give the address without "
            "them"
        )
    return url


def check_public_url(url: str | None) -> str | None:
    """The ``public_url`` as the index's hrefs begin with it: without trailing slashes.

    Raises
    ------
    ConfigError
        Naming the key, never quoting a password: for a user or password in it (every
        reader of the index would see them), a scheme other than :data:`PUBLIC_SCHEMES`,
        no host (or bucket), a query, a fragment or whitespace.
    """
    if url is None:
        return None
    key, shown = "config key 'public_url'", masked_url(check_published("public_url", url))
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.lower() not in PUBLIC_SCHEMES:
        raise ConfigError(
            f"{key}: {shown!r} is no http://, https:// or s3:// address; give the address "
            "users read the output prefix under"
        )
    if not rest.partition("/")[0]:
        raise ConfigError(f"{key}: {shown} names no host; give the address with its host")
    if any(character in "?#" or character.isspace() for character in url):
        raise ConfigError(
            f"{key}: {shown!r} has a query, a fragment or whitespace; give the address whose "
            "path the published files' paths follow"
        )
    if scheme.lower() == "s3":
        check_bucket(key, rest.rstrip("/"))
    return url.rstrip("/")


def check_cog(cog: dict) -> dict:
    """The COG encoding, its level within its codec's (the schema allows ZSTD's 1-22).

    Raises
    ------
    ConfigError
        For a DEFLATE level above 12.
    """
    if cog["compress"] == "DEFLATE" and cog["level"] > 12:
        raise ConfigError(
            f"config key 'cog.level': {cog['level']} is beyond DEFLATE's levels 1-12; give "
            "one of them, or compress: ZSTD"
        )
    return dict(cog)


def check_plan_size(tiles: int, products: int, years: int, periods: int) -> None:
    """Refuse a plan too large to hold in memory, before it is built.

    Raises
    ------
    ConfigError
    """
    total = tiles * products * years * periods
    if total > MAX_TILE_PERIODS:
        raise ConfigError(
            f"config: {total:,} tile-periods ({tiles} tiles x {products} products x {years} "
            f"years x {periods} periods) are more than one run can plan "
            f"({MAX_TILE_PERIODS:,}); check start_year and end_year, or split the run by "
            "years or products"
        )


def check_bounds(name: str, bounds: list[float], tile_size: int) -> None:
    """Refuse a tile's bounds wider or taller than a square of the tile grid, before its
    chips are counted: a tile is one square.

    Raises
    ------
    ConfigError
        Naming the tile and the largest bounds it may have.
    """
    key = f"config key 'tiles.{name}.bounds'"
    west, south, east, north = (to_tenths(value, key) for value in bounds)
    if max(east - west, north - south) > tile_size:
        raise ConfigError(
            f"{key}: {bounds} span {(east - west) / 10:g} x {(north - south) / 10:g} degrees, "
            f"more than a tile of the grid ({tile_size / 10:g} x {tile_size / 10:g}, "
            "tile_grid.size_deg); give the tile's own bounds"
        )


def check_chip_count(tiles: dict[str, int], products: int, months: int) -> None:
    """Refuse a plan whose chips would not fit in memory: a tile with too many chips for
    its completeness heatmap, or too many chip-months in all.

    Parameters
    ----------
    tiles : dict
        Each tile's name to the most chips it can have.
    products : int
    months : int
        Months of all years.

    Raises
    ------
    ConfigError
        Naming the bound.
    """
    name, most = max(tiles.items(), key=lambda item: item[1])
    if most * products > MAX_TILE_ROWS or most * products * months > MAX_TILE_CHIP_MONTHS:
        raise ConfigError(
            f"config: tile {name} has up to {most:,} chips, x {products} products x {months} "
            f"months: more than its completeness heatmap can draw ({MAX_TILE_ROWS:,} chips x "
            f"products, {MAX_TILE_CHIP_MONTHS:,} chip-months); check tile_grid.size_deg, "
            "chip_size_deg and the tile's bounds, or split the run by products or years"
        )
    total = sum(tiles.values()) * products * months
    if total > MAX_CHIP_MONTHS:
        raise ConfigError(
            f"config: {total:,} chip-months ({sum(tiles.values()):,} chips x {products} "
            f"products x {months} months) are more than one run can plan "
            f"({MAX_CHIP_MONTHS:,}); check tile_grid.size_deg and the tiles' bounds, or split "
            "the run by years or products"
        )


#: What a chip_rerun_command may refer to.
RERUN_PLACEHOLDERS = ("tile", "chip", "year", "prefix")
#: Words of a variable's or option's name that say it holds a secret, and last words that
#: say it only names one (``--token-file``, ``--secret-id``, ``--password-stdin``).
SECRET_WORDS = {"token", "secret", "password", "passwd", "pwd", "credential", "credentials"}
POINTER_WORDS = {"file", "path", "dir", "id", "arn", "name", "provider", "stdin", "prompt"}


def _names_a_secret(name: str) -> bool:
    words = [word for word in re.split(r"[-_]+", name.lower()) if word]
    secret = any(word in SECRET_WORDS for word in words) or "apikey" in "".join(words)
    return secret and words[-1] not in POINTER_WORDS and words[0] != "no"


def secret_given(command: str) -> str | None:
    """The variable or option of a shell command that is given a secret's value there
    (``API_TOKEN=…``, ``--password …``), or None. A value from a variable (``$TOKEN``) or
    a name passed on (``-e API_TOKEN``) is none.

    Raises
    ------
    ValueError
        If the shell could not read the command (an unbalanced quote).
    """
    words = [word.lstrip("(`") for word in shlex.split(command)]
    for word, following in zip(words, [*words[1:], ""], strict=True):
        name, equals, value = word.partition("=")
        given = value if equals else following if word.startswith("-") else ""
        if _names_a_secret(name) and given and not given.startswith(("-", "$")):
            if equals or "=" not in given:  # not `--secret id=…`: a key=value spec
                return name
    return None


def check_rerun_command(config: dict) -> None:
    """missing_chips: rerun needs a chip_rerun_command using only the known placeholders.

    Raises
    ------
    ConfigError
    """
    command = config["chip_rerun_command"]
    if config["missing_chips"] == "rerun" and not command:
        raise ConfigError(
            "config key 'chip_rerun_command': missing_chips: rerun needs the command that "
            "reruns the model for one chip and year"
        )
    if command and (shown := without_passwords(command)) != command:
        raise ConfigError(
            f"config key 'chip_rerun_command': {shown!r} holds a user or password, which the "
            "job logs and Snakemake's records would keep; pass it in the environment"
        )
    try:
        secret = secret_given(command) if command else None
    except ValueError as error:
        raise ConfigError(
            f"config key 'chip_rerun_command': the shell cannot read it ({error})"
        ) from None
    if secret:
        raise ConfigError(
            f"config key 'chip_rerun_command': it gives {secret} a value, which the job "
            "logs and Snakemake's records would keep; export it in the environment etm runs in"
        )
    if command:
        try:
            command.format(**dict.fromkeys(RERUN_PLACEHOLDERS, ""))
        except (KeyError, IndexError, ValueError) as error:
            raise ConfigError(
                f"config key 'chip_rerun_command': unknown or malformed placeholder {error}; "
                f"use {', '.join('{' + name + '}' for name in RERUN_PLACEHOLDERS)}"
            ) from None


def _tile_spec(
    name: str,
    prefixes: list[str],
    layout: dict | None,
    chip_size: int,
    unproduced: frozenset[Chip],
    grid: TileGrid,
) -> TileSpec:
    """A tile from its prefixes and its ``tiles`` entry (None: its chips are discovered)."""
    if layout is None:
        return TileSpec(name, tuple(prefixes), None)
    if "bounds" in layout:
        check_bounds(name, layout["bounds"], grid.size)
        area = chips_in_bounds(layout["bounds"], chip_size)
        chips = [chip for chip in area if chip not in unproduced]
        return TileSpec(name, tuple(prefixes), tuple(chips), tuple(area))
    chips = []
    for chip_name in layout["chips"]:
        try:
            chips.append(Chip.parse(chip_name))
        except ValueError as error:
            raise ConfigError(f"config key 'tiles.{name}.chips': {error}") from None
    return TileSpec(name, tuple(prefixes), tuple(chips), tuple(chips))


def _chips(key: str, names: list[str]) -> frozenset[Chip]:
    try:
        return frozenset(Chip.parse(name) for name in names)
    except ValueError as error:
        raise ConfigError(f"config key '{key}': {error}") from None


def _tile_grid(config: dict, chip_size: int) -> TileGrid:
    size = to_tenths(config["size_deg"], "config key 'tile_grid.size_deg'")
    if size % chip_size:
        raise ConfigError(
            f"config key 'tile_grid.size_deg': {config['size_deg']} is not a whole number of "
            f"{chip_size / 10:g}-degree chips"
        )
    if config["origin"] is None:
        return TileGrid(size, None)
    west, north = (to_tenths(v, "config key 'tile_grid.origin'") for v in config["origin"])
    return TileGrid(size, Chip(north, west))


def _plausibility(config: dict, schema: dict) -> Plausibility:
    defaults = schema["properties"]["plausibility"]["properties"]["ranges"]["default"]
    ranges = {**defaults, **config["ranges"]}
    for product, (low, high) in ranges.items():
        if low > high:
            raise ConfigError(
                f"config key 'plausibility.ranges.{product}': [{low}, {high}] is empty"
            )
    return Plausibility(
        {product: (float(low), float(high)) for product, (low, high) in ranges.items()},
        float(config["nan_share_jump"]),
        float(config["edge_tolerance_mm"]),
    )


def load_settings(
    config: dict, schema: dict, *, local: bool = True, workflow_folder: str | None = None
) -> Settings:
    """Validate a config and normalise it into :class:`Settings`.

    Parameters
    ----------
    config : dict
        The config as Snakemake loaded it (defaults are filled in place).
    schema : dict
        The JSON schema.
    local : bool
        Whether prefixes are local folders (else ``bucket/prefix`` on S3).
    workflow_folder : str, optional
        The workflow's folder (the Snakefile's), which a local output must keep apart from.

    Returns
    -------
    Settings

    Raises
    ------
    ConfigError
        On any invalid key or inconsistent values, as one line naming the key.
    """
    validate(config, schema)
    inputs = [
        normalised_prefix(
            "unmosaicked_inputs", without_scheme("unmosaicked_inputs", p, local), local
        )
        for p in config["unmosaicked_inputs"]
    ]
    output = normalised_prefix(
        "enduser_cog_output",
        without_scheme("enduser_cog_output", config["enduser_cog_output"], local),
        local,
    )
    if config["end_year"] < config["start_year"]:
        raise ConfigError(
            f"config key 'end_year': {config['end_year']} is before start_year "
            f"{config['start_year']}"
        )
    key = output_key(output, local)
    reports_dir = config["reports_dir"] or f"reports/{key}"  # reports are local files
    reports_dir = normalised_prefix("reports_dir", reports_dir, local=True)
    check_prefixes(inputs, output, reports_dir, local)
    if local and workflow_folder:
        check_apart_from_workflow(output, workflow_folder)
    if config["annual"] and len(set(config["months"])) < 12:
        raise ConfigError(
            "config key 'annual': a year is made from all 12 months; remove 'months' "
            "or set annual: false"
        )
    check_rerun_command(config)
    chip_size = to_tenths(config["chip_size_deg"], "chip_size_deg")
    unproduced = _chips("unproduced_chips", config["unproduced_chips"])
    prefixes: dict[str, list[str]] = {}
    for prefix in inputs:
        prefixes.setdefault(tile_name(prefix), []).append(prefix)
    years = config["end_year"] - config["start_year"] + 1
    months = len(set(config["months"]))
    check_plan_size(len(prefixes), len(set(config["products"])), years, months + config["annual"])
    for name in config["tiles"]:
        if name not in prefixes:
            raise ConfigError(
                f"config key 'tiles.{name}': no unmosaicked_inputs entry ends with "
                f"folder '{name}' (tiles: {', '.join(prefixes)})"
            )
    grid = _tile_grid(config["tile_grid"], chip_size)
    tiles = {
        name: _tile_spec(name, paths, config["tiles"].get(name), chip_size, unproduced, grid)
        for name, paths in prefixes.items()
    }
    square = (grid.size // chip_size) ** 2
    check_chip_count(
        {
            name: len(tile.area) if tile.chips is not None else square
            for name, tile in tiles.items()
        },
        len(set(config["products"])),
        years * months,
    )
    return Settings(
        products=tuple(dict.fromkeys(config["products"])),
        years=tuple(range(config["start_year"], config["end_year"] + 1)),
        months=tuple(sorted(set(config["months"]))),
        tiles=tiles,
        output=output,
        key=key,
        missing_chips=config["missing_chips"],
        chip_size=chip_size,
        reports_dir=reports_dir,
        cog=check_cog(config["cog"]),
        gdal_cache_mb=config["gdal_cache_mb"],
        mosaic_threads=config["mosaic_threads"],
        jobs_per_container=config["jobs_per_container"],
        years_per_container=config["years_per_container"],
        max_concurrent_containers=config["max_concurrent_containers"],
        annual=config["annual"],
        series_store=config["series_store"],
        annual_aggregation={
            **schema["properties"]["annual_aggregation"]["default"],
            **config["annual_aggregation"],
        },
        license=config["license"],
        license_url=config["license_url"] and check_published("license_url", config["license_url"]),
        public_url=check_public_url(config["public_url"]),
        notify={target: value for target, value in config["notify"].items() if value},
        chip_rerun_command=config["chip_rerun_command"],
        tile_grid=grid,
        unproduced=unproduced,
        suspect_chips=config["suspect_chips"],
        plausibility=_plausibility(config["plausibility"], schema),
        notes=obsolete_notes(config) + license_notes(config),
    )
