"""Config validation, defaults and normalisation."""

from pathlib import Path

import pytest
import yaml

from etm.config import load_settings
from etm.errors import ConfigError
from etm.grid import Chip

REPO = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())


def team_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_the_teams_config_loads_with_documented_defaults():
    settings = load_settings(team_config(), SCHEMA)
    assert settings.products == ("etasw", "netet")
    assert settings.years == (2020, 2021)
    assert settings.months == tuple(range(1, 13))
    assert list(settings.tiles) == ["r50.0_tile5", "r50.0_tile6"]
    assert settings.tiles["r50.0_tile6"].prefixes == (
        "ws-out/USA/Run08_18_2021/run_r50.0_tile6/r50.0_tile6",
    )
    assert settings.tiles["r50.0_tile6"].chips is None
    assert settings.output == "ws-enduser/USA/TBD"
    assert settings.missing_chips == "error"
    assert settings.max_concurrent_containers == 60
    assert settings.cog == {
        "dtype": "float32",
        "compress": "ZSTD",
        "level": 18,
        "predictor": "FLOATING_POINT",
        "blocksize": 512,
    }
    assert settings.annual is False
    assert settings.license == "other"
    assert settings.annual_aggregation["etasw"] == "sum"
    assert settings.annual_aggregation["snwpk"] == "mean"


def test_annual_aggregation_overrides_keep_the_other_defaults():
    config = team_config()
    config.update(annual=True, annual_aggregation={"netet": "mean"})
    settings = load_settings(config, SCHEMA)
    assert settings.annual is True
    assert settings.annual_aggregation["netet"] == "mean"
    assert settings.annual_aggregation["etasw"] == "sum"
    assert settings.annual_aggregation["swi"] == "mean"


def test_every_schema_key_has_a_description_and_optional_keys_a_default():
    def check(schema, where):
        for key, sub in schema.get("properties", {}).items():
            assert "description" in sub, f"{where}.{key}"
            if key not in schema.get("required", []):
                assert "default" in sub or where.endswith("tiles"), f"{where}.{key}"
            check(sub, f"{where}.{key}")

    check(SCHEMA, "config")


def test_split_run_prefixes_of_one_tile_are_one_tile():
    config = team_config()
    config["unmosaicked_inputs"].append("ws-out/USA/Run08_19_2021/run_r50.0_tile6/r50.0_tile6")
    settings = load_settings(config, SCHEMA)
    assert len(settings.tiles) == 2
    assert len(settings.tiles["r50.0_tile6"].prefixes) == 2


def test_tiles_by_bounds_or_by_chip_list():
    config = team_config()
    config["tiles"] = {
        "r50.0_tile5": {"bounds": [-116.8, 37.4, -106.8, 47.4]},
        "r50.0_tile6": {"chips": ["chip47.4N-106.8E", "chip47.4N-104.8E"]},
    }
    settings = load_settings(config, SCHEMA)
    assert len(settings.tiles["r50.0_tile5"].chips) == 25
    assert settings.tiles["r50.0_tile6"].chips == (Chip(474, -1068), Chip(474, -1048))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"end_yaer": 2021}, "config: unknown key 'end_yaer'; did you mean 'end_year'?"),
        ({"end_year": 2019}, "config key 'end_year': 2019 is before start_year 2020"),
        ({"products": ["etasw*"]}, "config key 'products.0': 'etasw*' is not one of"),
        ({"tiles": {"r50.0_tile6": {"chips": ["47.4N"]}}}, "config key 'tiles.r50.0_tile6.chips'"),
        (
            {"tiles": {"r50.0_tile6": {"bounds": [1, 2, 3]}}},
            "config key 'tiles.r50.0_tile6.bounds'",
        ),
        ({"cog": {"blocksise": 512}}, "config: unknown key 'cog.blocksise'; did you mean"),
        (
            {"annual": True, "months": [6, 7, 8]},
            "config key 'annual': a year is made from all 12 months",
        ),
        ({"annual_aggregation": {"etasw": "median"}}, "config key 'annual_aggregation.etasw'"),
        ({"annual_aggregation": {"et": "sum"}}, "config: unknown key 'annual_aggregation.et'"),
        ({"unmosaicked_inputs": ["/"]}, "config key 'unmosaicked_inputs': '/' names no tile"),
        (
            {"enduser_cog_output": "ws-out/USA/Run08_18_2021/run_r50.0_tile5/r50.0_tile5/cogs"},
            "config key 'enduser_cog_output': ws-out/USA/Run08_18_2021/run_r50.0_tile5/"
            "r50.0_tile5/cogs overlaps the input prefix",
        ),
        (
            {"enduser_cog_output": "ws-out/USA"},
            "config key 'enduser_cog_output': ws-out/USA overlaps",
        ),
    ],
)
def test_errors_are_one_line_naming_the_key(change, message):
    config = team_config()
    config.update(change)
    with pytest.raises(ConfigError) as error:
        load_settings(config, SCHEMA)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_missing_required_key_is_named():
    config = team_config()
    del config["enduser_cog_output"]
    with pytest.raises(ConfigError, match="'enduser_cog_output' is a required property"):
        load_settings(config, SCHEMA)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"missing_chips": "rerun"},
            "config key 'chip_rerun_command': missing_chips: rerun needs the command",
        ),
        (
            {"missing_chips": "rerun", "chip_rerun_command": "model --chip {chip} --day {day}"},
            "config key 'chip_rerun_command': unknown or malformed placeholder 'day'",
        ),
        (
            {"notify": {"sns_topic_arn": "etm-runs"}},
            "config key 'notify.sns_topic_arn': 'etm-runs' does not match",
        ),
    ],
)
def test_rerun_and_notify_settings_are_checked(change, message):
    with pytest.raises(ConfigError, match=f"^{message}"):
        load_settings({**team_config(), **change}, SCHEMA)


def test_rerun_command_placeholders_are_filled_shell_quoted():
    from etm.rerun import rerun_command

    command = rerun_command(
        "run-model --chip {chip} --year {year} --out {prefix}/",
        tile="r50.0_tile6", chip="chip47.4N-106.8E", year="2008", prefix="s3://ws-out/a b",
    )  # fmt: skip
    assert command == "run-model --chip chip47.4N-106.8E --year 2008 --out 's3://ws-out/a b'/"
