"""A user and password in AWS_ENDPOINT_URL, whatever they hold, are never printed: by the
workflow (a run on S3 stops at its first listing, no server needed) or by `etm`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import SNAKEMAKE, snakemake_command

CONFIG = {
    "products": ["etasw"],
    "start_year": 2020,
    "end_year": 2020,
    "unmosaicked_inputs": ["ws-out/USA/r50.0_tile6/"],
    "enduser_cog_output": "ws-enduser/USA/TBD/",
}
PASSWORDS = ["EP/SECRET2", "EP#SECRET2", "EP@SECRET2", "EP SECRET2"]
#: With a scheme, and without one (botocore's error quoted it whole, in a traceback).
ENDPOINTS = [f"http://etm:{p}@127.0.0.1:9" for p in PASSWORDS] + [
    f"etm:{p}@127.0.0.1:9" for p in PASSWORDS[:2]
]


def environment(endpoint: str) -> dict[str, str]:
    return {
        **os.environ, "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1",
        "AWS_ENDPOINT_URL": endpoint,
    }  # fmt: skip


def assert_masked(result: subprocess.CompletedProcess, endpoint: str) -> None:
    shown = endpoint.split("://")[0] + "://***@" if "://" in endpoint else "***@"
    errors = [line for line in result.stderr.splitlines() if line.startswith("etm error:")]
    assert len(errors) == 1 and f"{shown}127.0.0.1:9" in errors[0], result.stderr
    assert "SECRET2" not in result.stdout + result.stderr
    assert "etm:EP" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_endpoint_password_is_never_printed_by_the_workflow(tmp_path, endpoint):
    (tmp_path / "my.yaml").write_text(yaml.safe_dump(CONFIG))
    command = snakemake_command(
        "-n", "--default-storage-prefix", "s3://ws-work/etm", profile="ec2", configfile="my.yaml"
    )
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env=environment(endpoint),
    )  # fmt: skip
    assert result.returncode == 1
    assert_masked(result, endpoint)


def test_a_proxy_password_is_never_printed_by_the_workflow(tmp_path):
    # A / in the password: botocore's parser quoted "proxyuser:Prx9SECRET" as a host.
    (tmp_path / "my.yaml").write_text(yaml.safe_dump(CONFIG))
    command = snakemake_command(
        "-n", "--default-storage-prefix", "s3://ws-work/etm", profile="ec2", configfile="my.yaml"
    )
    proxy = "http://proxyuser:Prx9SECRET/tail@127.0.0.1:9"
    env = {**environment("http://127.0.0.1:9"), "HTTP_PROXY": proxy, "NO_PROXY": ""}
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env
    )  # fmt: skip
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("etm error:")]
    assert len(errors) == 1, result.stderr
    for secret in ("Prx9SECRET", "proxyuser"):
        assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_endpoint_password_is_never_printed_by_etm_unlock(tmp_path, endpoint):
    # botocore refuses the endpoint with an error quoting it: was a traceback.
    etm = Path(SNAKEMAKE).with_name("etm")
    result = subprocess.run(
        [str(etm), "unlock", "s3://ws-enduser/USA/TBD"], cwd=tmp_path, capture_output=True,
        text=True, timeout=120, env=environment(endpoint),
    )  # fmt: skip
    assert result.returncode == 1
    assert_masked(result, endpoint)


@pytest.mark.parametrize("key", ["enduser_cog_output", "unmosaicked_inputs", "work prefix"])
def test_a_password_written_into_an_s3_prefix_is_never_printed(tmp_path, key):
    # A / in the password ends what looks like the bucket's name, which was quoted.
    prefix, work = "s3://AKIAKEYID:PWHEAD/PWTAIL@ws-enduser/USA/X/", "s3://ws-work/etm"
    config = dict(CONFIG)
    if key == "work prefix":
        work = "s3://AKIAKEYID:PWHEAD/PWTAIL@ws-work/etm"
    elif key == "unmosaicked_inputs":
        config[key] = [prefix + "r50.0_tile6/"]
    else:
        config[key] = prefix
    (tmp_path / "my.yaml").write_text(yaml.safe_dump(config))
    command = snakemake_command(
        "-n", "--default-storage-prefix", work, profile="ec2", configfile="my.yaml"
    )
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env=environment("http://127.0.0.1:9"),
    )  # fmt: skip
    printed = result.stdout.replace(" ".join(command), "") + result.stderr
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("etm error:")]
    assert len(errors) == 1 and "an S3 path holds no user or password" in errors[0], printed
    assert "PWHEAD" not in errors[0] and "AKIAKEYID" not in errors[0]
