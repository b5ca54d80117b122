"""The workspace sample on the loopback S3 server, and the snakemake CLI run against it."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from conftest import SampleWorkspace, snakemake_command
from s3server import S3Server

OUTPUT = "USA/TBD"
BUCKETS = ("ws-out", "ws-enduser", "ws-work")
#: The profiles' FILL-IN values, filled in.
WORK_AREA = ["--default-storage-prefix", "s3://ws-work/etm"]
BATCH = [
    "--etm-batch-region", "us-east-1",
    "--etm-batch-job-queue", "arn:aws:batch:us-east-1:123456789012:job-queue/etm",
    "--etm-batch-job-role", "arn:aws:iam::123456789012:role/etm-batch-job",
]  # fmt: skip
FILLED_IN = {"ec2": WORK_AREA, "aws": [*WORK_AREA, *BATCH, "--etm-batch-image", "etm:test"]}


class S3Workspace(SampleWorkspace):
    """The workspace sample's chips in bucket ws-out, outputs to ws-enduser, logs to ws-work.

    ``endpoint`` is where the workflow's clients connect (the server, or a proxy in front
    of it); the workspace's own checks always go to the server directly.
    """

    def __init__(self, root: Path, server: S3Server, sample: Path):
        super().__init__(root, f"ws-enduser/{OUTPUT}")
        self.server, self.s3 = server, server.client()
        self.endpoint = server.endpoint
        self.environment: dict[str, str] = {}  # more variables for the workflow's processes
        for bucket in BUCKETS:
            self.s3.create_bucket(Bucket=bucket)
        server.upload_tree(sample / "ws-out", "ws-out")

    @staticmethod
    def prefix(tile: str) -> str:
        return f"ws-out/USA/Run08_18_2021/run_{tile}/{tile}/"

    def chip_key(self, tile, chip, product, year, month) -> str:
        return f"{self.prefix(tile)[len('ws-out/') :]}{chip}/{year}/{product}_{year}{month:02d}.tif"

    def objects(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """{key: ETag} of every object under a prefix."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", ())}

    def published(self, suffixes: tuple[str, ...] = (".tif",)) -> set[str]:
        """Keys under the output prefix (relative) with these suffixes: COGs by default."""
        keys = self.objects("ws-enduser", OUTPUT + "/")
        return {key[len(OUTPUT) + 1 :] for key in keys if key.endswith(suffixes)}

    def job_logs(self) -> dict[str, str]:
        """Every job log the workflow stored under its work prefix (bucket ws-work), by key;
        every text it keeps there with them, but the copies of the quicklooks (PNGs)."""
        return {
            key: self.s3.get_object(Bucket="ws-work", Key=key)["Body"].read().decode()
            for key in self.objects("ws-work")
            if not key.endswith(".png")
        }

    def logs(self) -> list[str]:
        """Every job log (on S3) and Snakemake's own logs of its runs here (local)."""
        local = (self.root / ".snakemake" / "log").glob("*.log")
        return [*self.job_logs().values(), *(p.read_text(errors="replace") for p in local)]

    def download(self, bucket: str, key: str) -> str:
        path = os.path.join(tempfile.mkdtemp(dir=self.root), os.path.basename(key))
        self.s3.download_file(bucket, key, path)
        return path

    def command(self, *args: str, profile: str = "ec2") -> tuple[list[str], dict[str, str]]:
        """The snakemake command line with a profile, and its environment."""
        self.write_config()
        command = snakemake_command(*FILLED_IN[profile], *args, profile=profile)
        environment = {
            **os.environ, **self.server.environment, "AWS_ENDPOINT_URL": self.endpoint,
            **self.environment,
        }  # fmt: skip
        return command, environment

    def snakemake(self, *args: str, profile: str = "ec2", timeout: float = 600) -> tuple:
        """Run snakemake with a profile; the input bucket must be identical afterwards.

        Returns the completed process and the server's request counts during the run.
        """
        before = self.objects("ws-out")
        self.server.reset_count()
        command, environment = self.command(*args, profile=profile)
        result = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=timeout,
            env=environment,
        )  # fmt: skip
        counts = self.server.count()
        assert self.objects("ws-out") == before, "a snakemake command touched the input bucket"
        return result, counts
