"""The workflow configuration: validated against ``config/schema.yaml``, then normalised.

The schema is the documentation of every key; this module turns a validated config
into :class:`Settings`, and a schema violation into one line that names the key.
"""

from __future__ import annotations

import copy
import difflib
import posixpath
from dataclasses import dataclass

import jsonschema
from jsonschema import Draft202012Validator

from etm.errors import ConfigError
from etm.grid import Chip, chips_in_bounds, to_tenths


@dataclass(frozen=True)
class TileSpec:
    """A tile: its name, every prefix that may hold its chips, and its expected chips.

    ``chips`` is None when the expected chips are discovered from the listing.
    """

    name: str
    prefixes: tuple[str, ...]
    chips: tuple[Chip, ...] | None


@dataclass(frozen=True)
class Settings:
    """Everything the workflow needs from the configuration, normalised."""

    products: tuple[str, ...]
    years: tuple[int, ...]
    months: tuple[int, ...]
    tiles: dict[str, TileSpec]
    output: str
    missing_chips: str
    chip_size: int
    reports_dir: str
    cog: dict
    gdal_cache_mb: int
    mosaic_threads: int
    max_concurrent_containers: int
    annual: bool
    annual_aggregation: dict[str, str]
    license: str
    notify: dict[str, str]
    chip_rerun_command: str | None


def _with_defaults(validator_class):
    """A validator class that also fills each missing property from its schema default."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(key, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


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
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        key = unknown[0]
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(allowed)}"
        full = f"{where}.{key}" if where else key
        return f"config: unknown key '{full}'{hint}"
    return f"config key '{where or '(top level)'}': {error.message}"


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
    validator = _with_defaults(Draft202012Validator)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(describe_violation(error))


def tile_name(prefix: str) -> str:
    """The tile a prefix holds: its last folder, e.g. ``r50.0_tile6``.

    Raises
    ------
    ConfigError
        If the prefix has no folder name.
    """
    name = prefix.rstrip("/").rsplit("/", 1)[-1]
    if not name:
        raise ConfigError(f"config key 'unmosaicked_inputs': {prefix!r} names no tile folder")
    return name


def _folder(path: str) -> str:
    return posixpath.normpath(path) + "/"


def check_output_prefix(output: str, inputs: list[str]) -> None:
    """Refuse an output prefix inside an input prefix, or containing one.

    Raises
    ------
    ConfigError
        Naming the input prefix it overlaps.
    """
    for prefix in inputs:
        if _folder(output).startswith(_folder(prefix)) or _folder(prefix).startswith(
            _folder(output)
        ):
            raise ConfigError(
                f"config key 'enduser_cog_output': {output} overlaps the input prefix "
                f"{prefix}; the workflow never writes where chips are, choose another prefix"
            )


#: What a chip_rerun_command may refer to.
RERUN_PLACEHOLDERS = ("tile", "chip", "year", "prefix")


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
    if command:
        try:
            command.format(**dict.fromkeys(RERUN_PLACEHOLDERS, ""))
        except (KeyError, IndexError, ValueError) as error:
            raise ConfigError(
                f"config key 'chip_rerun_command': unknown or malformed placeholder {error}; "
                f"use {', '.join('{' + name + '}' for name in RERUN_PLACEHOLDERS)}"
            ) from None


def _expected_chips(name: str, layout: dict, chip_size: int) -> tuple[Chip, ...]:
    if "bounds" in layout:
        return tuple(chips_in_bounds(layout["bounds"], chip_size))
    chips = []
    for chip_name in layout["chips"]:
        try:
            chips.append(Chip.parse(chip_name))
        except ValueError as error:
            raise ConfigError(f"config key 'tiles.{name}.chips': {error}") from None
    return tuple(chips)


def load_settings(config: dict, schema: dict) -> Settings:
    """Validate a config and normalise it into :class:`Settings`.

    Parameters
    ----------
    config : dict
        The config as Snakemake loaded it (defaults are filled in place).
    schema : dict
        The JSON schema.

    Returns
    -------
    Settings

    Raises
    ------
    ConfigError
        On any invalid key or inconsistent values, as one line naming the key.
    """
    validate(config, schema)
    if config["end_year"] < config["start_year"]:
        raise ConfigError(
            f"config key 'end_year': {config['end_year']} is before start_year "
            f"{config['start_year']}"
        )
    check_output_prefix(config["enduser_cog_output"], config["unmosaicked_inputs"])
    if config["annual"] and len(set(config["months"])) < 12:
        raise ConfigError(
            "config key 'annual': a year is made from all 12 months; remove 'months' "
            "or set annual: false"
        )
    check_rerun_command(config)
    chip_size = to_tenths(config["chip_size_deg"], "chip_size_deg")
    prefixes: dict[str, list[str]] = {}
    for prefix in config["unmosaicked_inputs"]:
        prefixes.setdefault(tile_name(prefix), []).append(prefix.rstrip("/"))
    for name in config["tiles"]:
        if name not in prefixes:
            raise ConfigError(
                f"config key 'tiles.{name}': no unmosaicked_inputs entry ends with "
                f"folder '{name}' (tiles: {', '.join(prefixes)})"
            )
    tiles = {
        name: TileSpec(
            name,
            tuple(paths),
            _expected_chips(name, config["tiles"][name], chip_size)
            if name in config["tiles"]
            else None,
        )
        for name, paths in prefixes.items()
    }
    return Settings(
        products=tuple(dict.fromkeys(config["products"])),
        years=tuple(range(config["start_year"], config["end_year"] + 1)),
        months=tuple(sorted(set(config["months"]))),
        tiles=tiles,
        output=config["enduser_cog_output"].rstrip("/"),
        missing_chips=config["missing_chips"],
        chip_size=chip_size,
        reports_dir=config["reports_dir"].rstrip("/"),
        cog=dict(config["cog"]),
        gdal_cache_mb=config["gdal_cache_mb"],
        mosaic_threads=config["mosaic_threads"],
        max_concurrent_containers=config["max_concurrent_containers"],
        annual=config["annual"],
        annual_aggregation={
            **schema["properties"]["annual_aggregation"]["default"],
            **config["annual_aggregation"],
        },
        license=config["license"],
        notify={target: value for target, value in config["notify"].items() if value},
        chip_rerun_command=config["chip_rerun_command"],
    )
