"""Snakemake executor plugin ``etm-batch``: AWS Batch jobs in the etm image.

A thin subclass of snakemake-executor-plugin-aws-batch 0.2.1 that changes four things:

- Nothing is installed when a job starts. The aws-batch plugin has Snakemake prefix each
  job with ``pip install`` of every storage plugin registered in the main process, and
  ``snakemake-storage-plugin-etm-s3`` is not a PyPI package (whoever registered that name
  would run code under the job role). Everything a job needs is in the image, checked
  when it is built (``etm check-image``).
- vCPUs and memory go to the job definition as an EC2 compute environment takes them
  (whole vCPUs, memory in MiB), not through the plugin's Fargate-only table, which
  crashes on a group's vCPU count (plugin issue #34).
- The S3 endpoint and retry settings of the main process (``AWS_ENDPOINT_URL``,
  ``AWS_ENDPOINT_URL_S3``, ``AWS_MAX_ATTEMPTS``, ``AWS_RETRY_MODE``) reach the jobs when
  they are set. Credentials never do: jobs take the job role's.
- A group's container runs its mosaic jobs in threads of its Snakemake process, as a
  single job's does: Snakemake passes ``--force-use-threads`` to single jobs only, and
  without it each ``run:`` job of a group would start another Snakemake.

Settings are the aws-batch plugin's, prefixed ``--etm-batch-``, plus ``image``; a value
still holding the profile's ``FILL-IN`` placeholder stops the run, even a dry run, with
one line naming it.
"""

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from typing import Optional

from snakemake_executor_plugin_aws_batch import Executor as BatchExecutor
from snakemake_executor_plugin_aws_batch import ExecutorSettings as BatchSettings
from snakemake_executor_plugin_aws_batch import common_settings as batch_common_settings
from snakemake_executor_plugin_aws_batch.batch_job_builder import BatchJobBuilder
from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo

from etm.config import check_placeholder
from etm.errors import ConfigError, say, without_passwords

#: The main process's S3 settings a job gets, when they are set.
FORWARDED = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE")

common_settings = dataclasses.replace(
    batch_common_settings, auto_deploy_default_storage_provider=False
)


@dataclass
class ExecutorSettings(BatchSettings):
    # Optional[], not "str | None": Snakemake's settings parser recognises typing.Union only.
    image: Optional[str] = field(  # noqa: UP045
        default=None,
        metadata={
            "help": "The job image: the etm image built by `make image` and pushed to ECR",
            "env_var": False,
            "required": True,
        },
    )

    def __post_init__(self):
        # Read with the command line, so that `snakemake -n` refuses placeholders too.
        try:
            for name in ("region", "job_queue", "job_role", "image"):
                check_placeholder(f"etm-batch-{name.replace('_', '-')}", getattr(self, name))
        except ConfigError as error:
            say([str(error)], prefix="etm error: ")
            sys.exit(1)


class JobBuilder(BatchJobBuilder):
    """A job definition sized for an EC2 compute environment."""

    def _validate_resources(self, vcpu, mem):
        return str(max(1, int(vcpu))), str(max(1, int(mem)))


class Executor(BatchExecutor):
    def __post_init__(self):
        super().__post_init__()
        self.container_image = self.settings.image

    def additional_general_args(self) -> str:
        return "--force-use-threads"  # one string: Snakemake joins it in as it is

    def envvars(self) -> dict:
        forwarded = {name: os.environ[name] for name in FORWARDED if os.environ.get(name)}
        return {**super().envvars(), **forwarded}

    def run_job(self, job):
        """Register a job definition for the job (or group) and submit it."""
        try:
            submitted = JobBuilder(
                logger=self.logger, job=job, envvars=self.envvars(),
                container_image=self.container_image, settings=self.settings,
                job_command=self.format_job_exec(job), batch_client=self.batch_client,
            ).submit()  # fmt: skip
        except Exception as error:
            reason = without_passwords(str(error))
            raise WorkflowError(f"Failed to submit AWS Batch job: {reason}") from None
        self.report_job_submission(
            SubmittedJobInfo(job=job, external_jobid=submitted["jobId"], aux=dict(submitted))
        )
