"""Config validation, defaults and normalisation."""

from hashlib import sha256
from pathlib import Path

import pytest
import yaml

from etm.config import (
    TileGrid,
    check_snakemake_config_files,
    check_work_prefix,
    load_settings,
    normalised_prefix,
    output_key,
    read_config_file,
    read_schema,
    secret_given,
)
from etm.errors import ConfigError
from etm.grid import Chip

REPO = Path(__file__).resolve().parents[2]
SCHEMA = read_schema(REPO)


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
    assert settings.tile_grid == TileGrid(100, None)  # learned from the chips found
    assert settings.output == "ws-enduser/USA/TBD"
    assert settings.missing_chips == "error"
    assert settings.max_concurrent_containers == 60
    assert settings.mosaic_threads == 1
    assert settings.cog == {
        "dtype": "float32",
        "compress": "ZSTD",
        "level": 9,
        "predictor": "FLOATING_POINT",
        "blocksize": 512,
    }
    assert settings.annual is False
    assert settings.license == "other"
    assert settings.annual_aggregation["etasw"] == "sum"
    assert settings.annual_aggregation["snwpk"] == "mean"


def test_the_series_store_is_off_by_default_and_taken_on_s3_as_locally():
    assert load_settings(team_config(), SCHEMA).series_store is False
    assert load_settings({**team_config(), "series_store": True}, SCHEMA).series_store is True
    on_s3 = load_settings({**team_config(), "series_store": True}, SCHEMA, local=False)
    assert on_s3.series_store is True


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


def test_s3_urls_are_bucket_prefixes_on_s3_and_refused_locally():
    config = team_config()
    config["unmosaicked_inputs"] = ["s3://" + p for p in config["unmosaicked_inputs"]]
    config["enduser_cog_output"] = "s3://ws-enduser/USA/TBD/"
    settings = load_settings(config, SCHEMA, local=False)
    assert settings.tiles == load_settings(team_config(), SCHEMA, local=False).tiles
    assert settings.output == "ws-enduser/USA/TBD"
    # A local run would write a folder named "s3:".
    with pytest.raises(
        ConfigError, match="^config key 'unmosaicked_inputs': s3://ws-out/.* is on S3"
    ):
        load_settings(config, SCHEMA)


@pytest.mark.parametrize(
    ("key", "prefix", "message"),
    [
        (
            "unmosaicked_inputs",
            "s3://AKIAEXAMPLE:s3cr3t@ws-out/USA/Run08_18_2021/run_r50.0_tile5/r50.0_tile5/",
            r"^config key 'unmosaicked_inputs': \*\*\*@ws-out/USA/.*: an S3 path holds no "
            "user or password; etm takes credentials from the AWS chain only",
        ),
        (
            "enduser_cog_output",
            "AKIAEXAMPLE:s3cr3t@ws-enduser/{x}/",
            r"^config key 'enduser_cog_output': \*\*\*@ws-enduser/\{x\}: an S3 path holds",
        ),
        (
            "enduser_cog_output",
            "s3://AKIAEXAMPLE:s3/cr3t@ws-enduser/USA/X",
            r"^config key 'enduser_cog_output': \*\*\*@ws-enduser/USA/X: an S3 path holds",
        ),
        (
            "enduser_cog_output",
            "ws enduser/USA/",
            "^config key 'enduser_cog_output': 'ws enduser/USA' is not a 'bucket/prefix' "
            "path: 'ws enduser' is no bucket name$",
        ),
    ],
)
def test_an_s3_prefix_that_is_no_bucket_is_refused_without_its_password(key, prefix, message):
    """botocore would quote the bucket, and the password before it, in its own error."""
    config = team_config()
    if key == "unmosaicked_inputs":
        config[key][0] = prefix
    else:
        config[key] = prefix
    with pytest.raises(ConfigError, match=message) as refused:
        load_settings(config, SCHEMA, local=False)
    assert "cr3t" not in str(refused.value) and "AKIA" not in str(refused.value)


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("s3://FILL-IN-work-bucket/etm", "is still the placeholder"),
        ("s3://AKIAEXAMPLE:s3cr3t@ws-work/etm", r"\*\*\*@ws-work/etm: an S3 path holds no"),
        ("s3://AKIAEXAMPLE:s3/cr3t@ws-work/etm", r"\*\*\*@ws-work/etm: an S3 path holds no"),
    ],
)
def test_a_work_prefix_to_fill_in_or_with_a_password_is_refused(prefix, message):
    with pytest.raises(
        ConfigError, match=f"^profile key 'default-storage-prefix'.*{message}"
    ) as refused:
        check_work_prefix(prefix)
    assert "cr3t" not in str(refused.value) and "AKIA" not in str(refused.value)
    check_work_prefix("s3://ws-work/etm")
    check_work_prefix(None)  # local runs have no default storage


def test_a_public_url_is_an_address_users_read_the_output_prefix_under():
    assert load_settings(team_config(), SCHEMA).public_url is None
    for url, kept in [
        ("https://d111111abcdef8.cloudfront.net/USA/TBD/", "https://d111111abcdef8.cloudfront.net/USA/TBD"),
        ("https://ws-enduser.s3.us-west-2.amazonaws.com/USA/TBD", None),
        ("http://data.example.org", None),
        ("s3://ws-enduser-copy/USA/TBD//", "s3://ws-enduser-copy/USA/TBD"),
    ]:  # fmt: skip
        assert load_settings({**team_config(), "public_url": url}, SCHEMA).public_url == (
            kept or url
        )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "https://reader:s3cr3t@cdn.example.org/USA",
            "https://***@cdn.example.org/USA holds a user, password or token, which every "
            "reader of the catalog would see; give the address without them",
        ),
        ("https://reader:s3/cr3t@cdn.example.org/USA", "https://***@cdn.example.org/USA holds"),
        ("reader:s3cr3t@cdn.example.org", "***@cdn.example.org holds a user, password or"),
        (
            "cdn.example.org/USA",
            "'cdn.example.org/USA' is no http://, https:// or s3:// address; give the address "
            "users read the output prefix under",
        ),
        ("ftp://cdn.example.org/USA", "'ftp://cdn.example.org/USA' is no http://"),
        ("", "'' is no http://"),
        ("https:///USA", "https:///USA names no host; give the address with its host"),
        (
            "https://cdn.example.org/USA?v=1",
            "'https://cdn.example.org/USA?v=1' has a query, a fragment or whitespace; give the "
            "address whose path the published files' paths follow",
        ),
        ("https://cdn.example.org/USA#map", "#map' has a query, a fragment or whitespace"),
        ("https://cdn.example.org/my data", "data' has a query, a fragment or whitespace"),
        ("s3://ws!enduser/USA", "'ws!enduser/USA' is not a 'bucket/prefix' path"),
    ],
)
def test_a_malformed_public_url_is_one_line_naming_the_key_without_its_password(url, problem):
    with pytest.raises(ConfigError) as refused:
        load_settings({**team_config(), "public_url": url}, SCHEMA)
    message = str(refused.value)
    assert message.startswith("config key 'public_url': ") and problem in message
    assert "s3cr3t" not in message and "cr3t" not in message and "\n" not in message


def test_a_license_url_with_a_password_is_refused_as_every_collection_links_it():
    config = {**team_config(), "license": "other"}
    with pytest.raises(ConfigError, match=r"^config key 'license_url': https://\*\*\*@x.org/l "
                       "holds a user, password or token"):  # fmt: skip
        load_settings({**config, "license_url": "https://user:LICSECRET@x.org/l"}, SCHEMA)
    with pytest.raises(ConfigError, match=r"^config key 'license_url': https://x.org/l\?token="
                       r"\*\*\* holds a user, password or token"):  # fmt: skip
        load_settings({**config, "license_url": "https://x.org/l?token=LICTOKEN"}, SCHEMA)
    url = "https://x.org/terms?lang=en"
    assert load_settings({**config, "license_url": url}, SCHEMA).license_url == url


def test_tiles_by_bounds_or_by_chip_list():
    config = team_config()
    config["tiles"] = {
        "r50.0_tile5": {"bounds": [-116.8, 37.4, -106.8, 47.4]},
        "r50.0_tile6": {"chips": ["chip47.4N-106.8E", "chip47.4N-104.8E"]},
    }
    settings = load_settings(config, SCHEMA)
    assert len(settings.tiles["r50.0_tile5"].chips) == 25
    assert settings.tiles["r50.0_tile6"].chips == (Chip(474, -1068), Chip(474, -1048))
    # An unproduced chip is not expected, and still where the bounds place the tile.
    config["unproduced_chips"] = ["chip47.4N-116.8E"]
    tile5 = load_settings(config, SCHEMA).tiles["r50.0_tile5"]
    assert len(tile5.chips) == 24 and len(tile5.area) == 25


@pytest.mark.parametrize(
    "tile_grid, expected",
    [
        ({"origin": [-116.8, 47.4]}, TileGrid(100, Chip(474, -1168))),
        ({"size_deg": 8}, TileGrid(80, None)),
        ({"origin": None, "size_deg": 6}, TileGrid(60, None)),
    ],
)
def test_the_tile_grid_is_given_by_its_origin_or_learned_with_its_size(tile_grid, expected):
    config = team_config()
    config["tile_grid"] = tile_grid
    assert load_settings(config, SCHEMA).tile_grid == expected


@pytest.mark.parametrize(
    "change, message",
    [
        ({"end_yaer": 2021}, "config: unknown key 'end_yaer'; did you mean 'end_year'?"),
        ({"start_year": "2020"}, "config key 'start_year': '2020' is not of type 'integer'"),
        ({"missing_chips": "ignore"}, "config key 'missing_chips': 'ignore' is not one of"),
        ({"cog": {"dtype": "float16"}}, "config key 'cog.dtype': 'float16' is not one of"),
        (
            {"tiles": {"r50.0_tile7": {"bounds": [0, 0, 10, 10]}}},
            "config key 'tiles.r50.0_tile7': no unmosaicked_inputs entry ends with folder",
        ),
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
        ({"unmosaicked_inputs": ["/"]}, "config key 'unmosaicked_inputs': '/' names no folder"),
        (
            {"enduser_cog_output": "~/pub"},
            "config key 'enduser_cog_output': '~/pub' begins with '~', which only a shell "
            "expands; write the folder's whole path",
        ),
        ({"reports_dir": "/"}, "config key 'reports_dir': '/' names no folder"),
        (
            {"enduser_cog_output": "$HOME/out"},
            "config key 'enduser_cog_output': '$HOME/out' begins with '$', which only a shell "
            "expands",
        ),
        (
            {"cog": {"compress": "DEFLATE", "level": 22}},
            "config key 'cog.level': 22 is beyond DEFLATE's levels 1-12",
        ),
        ({"reports_dir": " "}, "config key 'reports_dir': ' ' has a folder name that begins"),
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
    with pytest.raises(ConfigError, match="^config: missing key 'enduser_cog_output' "):
        load_settings(config, SCHEMA)


def test_the_teams_file_with_the_old_orchestrators_keys_loads_with_a_note_for_each():
    config = team_config()
    assert (config["max_cpu_percent"], config["min_memory_available"], config["sleep_time"]) == (
        220, 30, 1,
    )  # fmt: skip
    settings = load_settings(config, SCHEMA, local=False)
    assert [note.split("'")[1] for note in settings.notes] == [
        "max_cpu_percent", "min_memory_available", "sleep_time", "license",
    ]  # fmt: skip
    assert all("has no effect" in note for note in settings.notes[:3])
    assert "the STAC Collections link no license terms" in settings.notes[3]
    assert settings.max_concurrent_containers == 60
    assert settings.mosaic_threads == 1
    # Keys without effect are not refused for how their values are written.
    written = dict(max_cpu_percent="80%", min_memory_available="30GB", sleep_time=0.5)
    assert load_settings({**config, **written}, SCHEMA, local=False).notes == settings.notes
    for key in ("max_cpu_percent", "min_memory_available", "sleep_time"):
        del config[key]
    config["license_url"] = "https://example.org/etm-terms"
    assert load_settings(config, SCHEMA, local=False).notes == ()
    config.update(license="CC-BY-4.0", license_url=None)
    assert load_settings(config, SCHEMA, local=False).notes == ()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"start_year": 2020.0}, "config key 'start_year': 2020.0 is not of type 'integer'"),
        ({"months": [7.0]}, "config key 'months.0': 7.0 is not of type 'integer'"),
        ({"cog": {"blocksize": 512.0}}, "config key 'cog.blocksize': 512.0 is not of type"),
        ({"cog": {"level": True}}, "config key 'cog.level': True is not of type 'integer'"),
        ({"end_year": 20201}, "config key 'end_year': 20201 is greater than the maximum of 2100"),
        ({"unproduced_chips": ["chip043.4N-102.8E"]}, "config key 'unproduced_chips': "),
        ({"tile_grid": {"size_deg": 9}}, "config key 'tile_grid.size_deg': 9 is not a whole"),
        # Degrees times 10 beyond float's range, or rounding to 0 tenths (a division by 0).
        ({"chip_size_deg": 1e-300}, "config key 'chip_size_deg': 1e-300 is less than the mini"),
        ({"chip_size_deg": 1.7e308}, "config key 'chip_size_deg': 1.7e+308 is greater than"),
        ({"tile_grid": {"size_deg": 0.01}}, "config key 'tile_grid.size_deg': 0.01 is less"),
        ({"tile_grid": {"origin": [1.7e308, 47.4]}}, "config key 'tile_grid.origin.0': 1.7e+308"),
        (
            {"tiles": {"r50.0_tile6": {"bounds": [-1.7e308, 37.4, -96.8, 47.4]}}},
            "config key 'tiles.r50.0_tile6.bounds.0': -1.7e+308 is less than the minimum of -180",
        ),
    ],
)
def test_numbers_and_grid_keys_are_checked_before_any_job(change, message):
    config = team_config()
    config.update(change)
    with pytest.raises(ConfigError) as error:
        load_settings(config, SCHEMA, local=False)
    assert str(error.value).startswith(message), str(error.value)


def test_a_plan_too_large_to_hold_is_refused_before_it_is_built():
    config = team_config()
    tiles = [f"b/run/t{i}/" for i in range(18)]
    products = ["etasw", "etc", "netet", "srf", "dd", "rain"]
    config.update(products=products, start_year=1900, end_year=2100, unmosaicked_inputs=tiles)
    with pytest.raises(ConfigError, match=r"^config: 260,496 tile-periods \(18 tiles x 6 products"):
        load_settings(config, SCHEMA, local=False)


def test_a_yaml_file_that_is_not_a_mapping_is_named(tmp_path):
    listed = tmp_path / "listed.yaml"
    listed.write_text("- products\n- etasw\n")
    with pytest.raises(ConfigError, match=f"^config file {listed}: is a list, not a mapping"):
        read_config_file(str(listed))
    broken = tmp_path / "broken.yaml"
    broken.write_text("products: [etasw\n")
    with pytest.raises(ConfigError, match=f"^config file {broken}: cannot be read as YAML"):
        read_config_file(str(broken))


def local_config(tmp_path, monkeypatch, **changes) -> dict:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "chips" / "r50.0_tile6").mkdir(parents=True)
    config = team_config()
    config.update({"unmosaicked_inputs": ["chips/r50.0_tile6/"], "enduser_cog_output": "out/",
                   **changes})  # fmt: skip
    return config


@pytest.mark.parametrize(
    "change, message",
    [
        ({"enduser_cog_output": "{tmp}/chips/r50.0_tile6/cogs"},
         "config key 'enduser_cog_output': "),
        ({"enduser_cog_output": "linked/cogs"},
         "config key 'enduser_cog_output': linked/cogs overlaps"),
        ({"reports_dir": "chips/r50.0_tile6/reports"}, "config key 'reports_dir': chips/"),
        ({"unmosaicked_inputs": ["chips/r50.0_tile6/", "{tmp}/chips/r50.0_tile6"]},
         "config key 'unmosaicked_inputs': {tmp}/chips/r50.0_tile6 is listed twice"),
        ({"unmosaicked_inputs": ["chips/{tile}/r50.0_tile6/"]},
         "config key 'unmosaicked_inputs': chips/{tile}"),
        ({"enduser_cog_output": "out/{product}"},
         "config key 'enduser_cog_output': out/{product} has a brace"),
    ],
)  # fmt: skip
def test_local_prefixes_are_compared_resolved(tmp_path, monkeypatch, change, message):
    change = yaml.safe_load(yaml.safe_dump(change).replace("{tmp}", str(tmp_path)))
    config = local_config(tmp_path, monkeypatch, **change)
    (tmp_path / "linked").symlink_to(tmp_path / "chips" / "r50.0_tile6")
    with pytest.raises(ConfigError) as error:
        load_settings(config, SCHEMA)
    assert str(error.value).startswith(message.replace("{tmp}", str(tmp_path))), str(error.value)


def test_reports_are_kept_apart_per_output_prefix():
    settings = load_settings(team_config(), SCHEMA, local=False)
    assert (
        settings.key == "ws-enduser_USA_TBD-" + sha256(b"s3://ws-enduser/USA/TBD").hexdigest()[:8]
    )
    assert settings.reports_dir == f"reports/{settings.key}"
    config = team_config()
    config["reports_dir"] = "my-reports/"
    assert load_settings(config, SCHEMA, local=False).reports_dir == "my-reports"


@pytest.mark.parametrize(
    "one, other, local",
    [("pub/x", "pub_x", False), ("pub/x", "pub_x", True), ("/data/out", "data/out", True)],
)
def test_two_output_prefixes_never_share_a_folder(tmp_path, monkeypatch, one, other, local):
    monkeypatch.chdir(tmp_path)
    assert output_key(one, local) != output_key(other, local)
    assert output_key(one, local).split("-")[0] == output_key(other, local).split("-")[0]
    assert (
        output_key("out", True)
        == output_key("./out/", True)
        == output_key(str(tmp_path / "out"), True)
    )


@pytest.mark.parametrize(
    "key, value",
    [
        ("plausibility", {"ranges": {"etasw": [float("nan"), 2000]}}),
        ("plausibility", {"nan_share_jump": float("nan")}),
        ("chip_size_deg", float("inf")),
        ("chip_size_deg", float("nan")),
        ("tile_grid", {"origin": [-float("inf"), 47.4]}),
        ("tile_grid", {"size_deg": float("nan")}),
        ("tiles", {"r50.0_tile6": {"bounds": [float("nan"), 37.4, -96.8, 47.4]}}),
        ("tiles", {"r50.0_tile6": {"bounds": [-106.8, 37.4, float("inf"), 47.4]}}),
    ],
)
def test_every_number_in_the_config_is_finite(key, value):
    config = {**team_config(), key: value}
    finite = rf"config key '{key}[.\w]*': (nan|inf|-inf) is not a finite number; write a number$"
    with pytest.raises(ConfigError, match=finite):
        load_settings(config, SCHEMA, local=False)


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
            {"chip_rerun_command": "m.sh {chip} https://u:RRSECRET9@h.example/x"},
            "config key 'chip_rerun_command': 'm.sh {chip} https://\\*\\*\\*@h.example/x' holds a "
            "user or password, which the job logs",
        ),
        (
            {"chip_rerun_command": "MODEL_API_TOKEN=SECRETBEARER9 m.sh {chip} {year}"},
            "config key 'chip_rerun_command': it gives MODEL_API_TOKEN a value, which the job "
            "logs and Snakemake's records would keep; export it in the environment etm runs in",
        ),
        (
            {"chip_rerun_command": "m.sh --password hunter2 {chip}"},
            "config key 'chip_rerun_command': it gives --password a value",
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


@pytest.mark.parametrize(
    "command, secret",
    [
        ("MODEL_API_TOKEN=SECRETBEARER9 m.sh {chip} {year}", "MODEL_API_TOKEN"),
        ("m.sh --api-key=x {chip}", "--api-key"),
        ("m.sh '--token=abc' {chip}", "--token"),
        ('m.sh "--password" hunter2 {chip}', "--password"),
        ("(TOKEN=abc m.sh {chip})", "TOKEN"),
        ("docker run -e API_TOKEN=abc img {chip}", "API_TOKEN"),
        ("m.sh --token-file /etc/model/token {chip} {year}", None),
        ("docker run -e API_TOKEN img {chip}", None),  # passed on by name
        ('m.sh --password "$DB_PASSWORD" {chip}', None),
        ("ssh -o PasswordAuthentication=no host m.sh {chip}", None),
        ("aws ecr get-login-password | docker login --username AWS --password-stdin x", None),
        ("m.sh --secret-id model/key --no-password-prompt --max-tokens 4 {chip}", None),
        ("docker run --secret id=model,src=/run/key img {chip}", None),
    ],
)
def test_a_rerun_command_giving_a_secret_its_value_is_told_from_one_naming_it(command, secret):
    assert secret_given(command) == secret


def test_a_rerun_command_the_shell_cannot_read_is_one_line():
    with pytest.raises(ConfigError, match="^config key 'chip_rerun_command': the shell cannot "
                       "read it \\(No closing quotation\\)"):  # fmt: skip
        load_settings({**team_config(), "chip_rerun_command": "m.sh '{chip}"}, SCHEMA)


def test_rerun_command_placeholders_are_filled_shell_quoted():
    from etm.rerun import rerun_command

    command = rerun_command(
        "run-model --chip {chip} --year {year} --out {prefix}/",
        tile="r50.0_tile6", chip="chip47.4N-106.8E", year="2008", prefix="s3://ws-out/a b",
    )  # fmt: skip
    assert command == "run-model --chip chip47.4N-106.8E --year 2008 --out 's3://ws-out/a b'/"


@pytest.mark.parametrize(
    ("path", "local", "normalised"),
    [
        ("./out//cogs/", True, "out/cogs"),
        ("../chips/r50.0_tile6/", True, "../chips/r50.0_tile6"),
        ("/data//out/", True, "/data/out"),
        ("ws-enduser/USA/TBD/", False, "ws-enduser/USA/TBD"),
    ],
)
def test_prefixes_are_spelt_one_way(path, local, normalised):
    assert normalised_prefix("enduser_cog_output", path, local) == normalised


@pytest.mark.parametrize(
    ("path", "local", "problem"),
    [
        ("out/ ", True, "has a folder name that begins or ends in whitespace (' ')"),
        ("out/ x/y", True, "has a folder name that begins or ends in whitespace (' x')"),
        ("chips/../r50.0_tile6", True, "has a folder named '..'"),
        ("/../out", True, "has a folder named '..'"),
        ("chips/./r50.0_tile6", True, "has a folder named '.'"),
        ("ws-out/./r50.0_tile6", False, "has a folder named '.'"),
        ("ws-out//r50.0_tile6", False, "has an empty folder name"),
        (
            "pu\nb/x",
            True,
            "has a folder name holding U+000A, a control, invisible or unusual "
            "space character ('pu\\nb')",
        ),
        (
            "ws-enduser/pub\u200b",
            False,
            "has a folder name holding U+200B, a control, "
            "invisible or unusual space character ('pub\\u200b')",
        ),
        (
            "t/\x7f",
            True,
            "has a folder name holding U+007F, a control, invisible or unusual "
            "space character ('\\x7f')",
        ),
        (
            "t/a\u00a0b",
            True,
            "has a folder name holding U+00A0, a control, invisible or "
            "unusual space character ('a\\xa0b')",
        ),
    ],
)
def test_prefixes_publishing_elsewhere_than_they_say_are_refused(path, local, problem):
    with pytest.raises(ConfigError) as error:
        normalised_prefix("enduser_cog_output", path, local)
    assert str(error.value) == (
        f"config key 'enduser_cog_output': {path!r} {problem}; write the prefix without it, "
        "or rename the folder"
    )


@pytest.mark.parametrize("path", ["./", "..", "/"])
def test_a_prefix_naming_no_folder_is_refused(path):
    with pytest.raises(ConfigError, match="names no folder$"):
        normalised_prefix("enduser_cog_output", path, True)


def test_a_config_value_quoted_in_an_error_is_short_and_without_a_password():
    config = team_config()
    config["notify"] = {"webhook_url": "etm-user:S3CRET/PW#9@hooks.example.com/T0"}
    with pytest.raises(ConfigError) as error:
        load_settings(config, SCHEMA)
    assert str(error.value) == (
        "config key 'notify.webhook_url': '***@hooks.example.com/T0' does not match '^https?://'"
    )
    config = team_config()
    config["sleep_time"] = [[["lol"] * 9] * 9] * 81  # 6,561 values
    with pytest.raises(ConfigError) as error:
        load_settings(config, SCHEMA)
    assert str(error.value).startswith("config key 'sleep_time': [[[...], [...], [...], ")
    assert str(error.value).endswith(" is not of type 'number', 'string', 'null'")
    assert len(str(error.value)) < 500  # in full, 47 kB


def written(tmp_path: Path, content: str | bytes, name: str = "my.yaml") -> str:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)


TEAM_FILE = (REPO / "config" / "config.yaml").read_text()


@pytest.mark.parametrize(
    "encoding, problem",
    [
        ("utf-16", "it starts with UTF-16's byte-order mark"),
        ("utf-16-be", "byte 0x00 on line 1: Latin-1 or UTF-16?"),
        ("utf-32", "it starts with UTF-32's byte-order mark"),
        ("latin-1", "byte 0xe9 on line 2: Latin-1 or UTF-16?"),
    ],
)
def test_a_config_file_is_utf8(tmp_path, encoding, problem):
    path = written(tmp_path, ("# the team's\n# caf\u00e9\n" + TEAM_FILE).encode(encoding))
    with pytest.raises(ConfigError) as error:
        read_config_file(path)
    assert str(error.value) == (
        f"config file {path}: is not UTF-8 text ({problem}); save it as UTF-8"
    )


def test_a_utf8_config_file_with_a_byte_order_mark_is_read_as_snakemake_reads_it(tmp_path):
    path = written(tmp_path, "\ufeff" + TEAM_FILE)
    assert read_config_file(path) == team_config()


def nested_aliases(depth: int, width: int = 9) -> str:
    """A list of ``width`` aliases of ``width`` aliases ... ``depth`` levels: width**depth."""
    lines = ["sleep_time:", "  - &a0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"  - &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, depth)]
    return TEAM_FILE.replace("sleep_time: 1\n", "") + "\n".join(lines) + "\n"


def test_aliases_are_read_expanded_up_to_a_bound_and_refused_past_it(tmp_path):
    # 1 + 3 + 9 + ... values per level, under the bound: read, each alias its anchor's value.
    config = read_config_file(written(tmp_path, nested_aliases(3, width=3)))
    three = ["lol"] * 3
    assert config["sleep_time"] == [three, [three] * 3, [[three] * 3] * 3]
    # Five levels are 74,732 values (the last list alone 1 + 9 + ... + 9**5): read. Six
    # levels are 672,603: refused, as nine levels (387 million) are, having built nothing.
    assert read_config_file(written(tmp_path, nested_aliases(5)))
    for depth in (6, 9):
        with pytest.raises(ConfigError, match="holds more than 100,000 values or 20 levels"):
            read_config_file(written(tmp_path, nested_aliases(depth)))


@pytest.mark.parametrize(
    "content, problem",
    [
        ("a: &a [1, *a]\n", "an alias (*name) inside its own anchor repeats it without end"),
        ("a: &a {b: *a}\n", "an alias (*name) inside its own anchor repeats it without end"),
        ("a: " + "[" * 21 + "]" * 21 + "\n", "holds more than 100,000 values or 20 levels"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 20 lists or mappings"),
        ('{"a": ' + "[" * 21 + "]" * 21 + "}", "holds more than 100,000 values or 20 levels"),
        ('{"a": ' + "[" * 5000 + "]" * 5000 + "}", "nested deeper than 20 lists or mappings"),
        ("a: " + "7" * 5000 + "\n", "cannot be read as YAML (Exceeds the limit (4300 digits)"),
        ("a: 1\n---\nb: 2\n", "cannot be read as YAML (expected a single document"),
        ("", "is empty, not a mapping of keys like 'products: [etasw]'"),
        ("[1, 2]", "is a list, not a mapping of keys like 'products: [etasw]'"),
    ],
)  # fmt: skip
def test_a_config_file_snakemake_would_fail_to_load_is_one_line(tmp_path, content, problem):
    path = written(tmp_path, content)
    with pytest.raises(ConfigError) as error:
        read_config_file(path)
    assert str(error.value).startswith(f"config file {path}: {problem}"), str(error.value)
    assert "\n" not in str(error.value)


def test_a_json_config_file_is_read_as_snakemake_reads_it(tmp_path):
    import json

    path = written(tmp_path, json.dumps(team_config()), "my.json")
    assert read_config_file(path) == team_config()


def test_snakemake_checks_each_config_file_first_once_etm_is_imported(tmp_path, capsys):
    from snakemake.common import configfile

    check_snakemake_config_files()  # as the import of etm's storage plugin does
    wrapped = configfile._load_configfile
    check_snakemake_config_files()
    assert configfile._load_configfile is wrapped and wrapped.checked_by_etm  # once
    team = written(tmp_path, TEAM_FILE)
    assert configfile.load_configfile(team) == team_config()
    with pytest.raises(SystemExit) as exited:
        configfile.load_configfile(written(tmp_path, nested_aliases(9)))
    assert exited.value.code == 1
    assert capsys.readouterr().err.startswith(
        f"etm error: config file {tmp_path / 'my.yaml'}: holds more than 100,000 values"
    )


@pytest.mark.parametrize("output", ["ws-enduser/USA/TBD?x=1", "ws-enduser/USA/TBD#frag"])
def test_an_s3_prefix_with_a_query_or_fragment_sign_is_refused(output):
    with pytest.raises(ConfigError) as error:
        load_settings({**team_config(), "enduser_cog_output": output}, SCHEMA, local=False)
    assert str(error.value) == (
        f"config key 'enduser_cog_output': {output} has a '?' or '#'; Snakemake would read an "
        "S3 path's query or fragment there: rename the folder"
    )
