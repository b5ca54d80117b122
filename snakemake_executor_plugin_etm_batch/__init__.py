"""Snakemake executor plugin ``etm-batch``: AWS Batch jobs in the etm image.

A thin subclass of snakemake-executor-plugin-aws-batch 0.2.1. What it changes:

- Nothing is installed when a job starts. The aws-batch plugin has Snakemake prefix each
  job with ``pip install`` of every storage plugin registered in the main process, and
  ``snakemake-storage-plugin-etm-s3`` is not a PyPI package (whoever registered that name
  would run code under the job role). Everything a job needs is in the image, checked
  when it is built (``etm check-image``).
- Names Batch accepts (:func:`etm.batch.job_name`): the plugin names jobs after Snakemake's
  job or group name, and tile names hold a dot, which Batch refuses.
- Containers without privileges, as the image's own user (the plugin asks for privileged
  ones); a retry strategy that starts a job again on a lost Spot instance, and fails any
  other failure once (:data:`etm.batch.RETRY_STRATEGY`); the run's id and the profile's
  tags on every job definition and job.
- vCPUs and memory go to the job definition as an EC2 compute environment takes them
  (whole vCPUs, memory in MiB), not through the plugin's Fargate-only table, which
  crashes on a group's vCPU count (plugin issue #34).
- Job states come from DescribeJobs for up to 100 jobs a call; a job that waits in
  RUNNABLE beyond ``runnable-timeout`` seconds is reported in one line, with the likely
  causes, and the states of the run's jobs are summed up every few minutes.
- The run's jobs are ended when the main process ends in any way it can see: an error,
  Ctrl-C, or SIGTERM (on which Snakemake itself would wait for them, up to hours).
- The S3 endpoint and retry settings of the main process (``AWS_ENDPOINT_URL``,
  ``AWS_ENDPOINT_URL_S3``, ``AWS_MAX_ATTEMPTS``, ``AWS_RETRY_MODE``) reach the jobs when
  they are set. Credentials never do: jobs take the job role's.
- A group's container runs its mosaic jobs in threads of its Snakemake process, as a
  single job's does: Snakemake passes ``--force-use-threads`` to single jobs only, and
  without it each ``run:`` job of a group would start another Snakemake. Its Snakemake
  gets the container's vCPUs as ``--cores``, not the main process's.

Settings are the aws-batch plugin's, prefixed ``--etm-batch-``, plus ``image`` and
``runnable-timeout``; a value still holding the profile's ``FILL-IN`` placeholder stops the
run, even a dry run, with one line naming it.
"""

import dataclasses
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import List, Optional  # noqa: UP035

from snakemake_executor_plugin_aws_batch import Executor as BatchExecutor
from snakemake_executor_plugin_aws_batch import ExecutorSettings as BatchSettings
from snakemake_executor_plugin_aws_batch import common_settings as batch_common_settings
from snakemake_executor_plugin_aws_batch.batch_job_builder import BatchJobBuilder
from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo

from etm import batch
from etm.config import check_placeholder
from etm.errors import ConfigError, say, without_passwords

#: The main process's S3 settings a job gets, when they are set.
FORWARDED = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE")
#: Seconds between two summaries of the run's job states.
SUMMARY_SECONDS = 300

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
    runnable_timeout: int = field(
        default=900,
        metadata={
            "help": "Seconds a job may wait in RUNNABLE before the run says so, with the "
            "likely causes (an INVALID compute environment, no route to ECR, no capacity)",
            "env_var": False,
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
    """A job definition and a job that Batch accepts, named after the run and the job."""

    def __init__(self, *args, run: str, **kwargs):
        super().__init__(*args, **kwargs)
        if self.job.is_group():
            parts = batch.first_period(job.wildcards for job in self.job.jobs)
        else:
            parts = list(map(str, self.job.wildcards))
        self.name = batch.job_name(run, batch.what_runs(self.job.name, parts))
        self.tags = {**(self.settings.tags or {}), batch.RUN_TAG: run}

    def _validate_resources(self, vcpu, mem):
        return str(max(1, int(vcpu))), str(max(1, int(mem)))

    def build_job_definition(self):
        vcpus, memory = self._validate_resources(
            self.job.resources.get("_cores", 1), self.job.resources.get("mem_mb", 1024)
        )
        properties = {
            "image": self.container_image,
            "command": self._make_container_command(self.job_command),
            "environment": [{"name": k, "value": v} for k, v in self.envvars.items()],
            "jobRoleArn": self.settings.job_role,
            "resourceRequirements": [
                {"type": "VCPU", "value": vcpus},
                {"type": "MEMORY", "value": memory},
            ],
        }
        try:
            definition = self.batch_client.register_job_definition(
                jobDefinitionName=self.name, type="container", containerProperties=properties,
                retryStrategy=batch.RETRY_STRATEGY, propagateTags=True,
                timeout={"attemptDurationSeconds": self.settings.task_timeout},
                tags=self.tags, platformCapabilities=["EC2"],
            )  # fmt: skip
        except Exception as error:
            raise WorkflowError(f"Failed to register job definition: {error}") from error
        return definition, self.name

    def submit(self):
        definition, name = self.build_job_definition()
        try:
            submitted = self.batch_client.submit_job(
                jobName=name, jobQueue=self.settings.job_queue,
                jobDefinition=definition["jobDefinitionArn"], tags=self.tags,
                propagateTags=True,
            )  # fmt: skip
        except Exception as error:
            raise WorkflowError(f"Failed to submit job: {error}") from error
        return {**submitted, "job_definition_arn": definition["jobDefinitionArn"]}


class Executor(BatchExecutor):
    def __post_init__(self):
        super().__post_init__()
        self.container_image = self.settings.image
        self.run = batch.current_run()
        self.runnable_since: dict[str, float] = {}
        self.reported_runnable = False
        self.summarised = time.monotonic()
        self.ends_on_sigterm = False
        self.container_cores: int | None = None

    def additional_general_args(self) -> str:
        # One string, joined in as it is. A container goes on with its other months after
        # one fails: Snakemake passes no --keep-going to a job's Snakemake.
        return "--force-use-threads --keep-going"

    @property
    def cores(self):
        return getattr(self, "container_cores", None) or super().cores

    def format_job_exec(self, job) -> str:
        # A container's Snakemake runs as many of its jobs at once as the container has
        # vCPUs: Snakemake would pass it the main process's --cores (220), and a container of
        # 1 vCPU and 1 GiB would start all its 13 mosaics at once.
        self.container_cores = max(1, int(job.resources.get("_cores", 1)))
        try:
            return super().format_job_exec(job)
        finally:
            self.container_cores = None

    def envvars(self) -> dict:
        forwarded = {name: os.environ[name] for name in FORWARDED if os.environ.get(name)}
        return {**super().envvars(), **forwarded}

    def run_job(self, job):
        """Register a job definition for the job (or group) and submit it."""
        if not self.ends_on_sigterm:
            # Snakemake's own handler, set up with the scheduler, waits for every job to
            # end; a KeyboardInterrupt instead makes it cancel them (Executor.cancel).
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            self.ends_on_sigterm = True
        try:
            submitted = JobBuilder(
                logger=self.logger, job=job, envvars=self.envvars(),
                container_image=self.container_image, settings=self.settings,
                job_command=self.format_job_exec(job), batch_client=self.batch_client,
                run=self.run,
            ).submit()  # fmt: skip
        except Exception as error:
            reason = without_passwords(str(error))
            raise WorkflowError(f"Failed to submit AWS Batch job: {reason}") from None
        self.report_job_submission(
            SubmittedJobInfo(job=job, external_jobid=submitted["jobId"], aux=dict(submitted))
        )

    async def check_active_jobs(
        self,
        active_jobs: List[SubmittedJobInfo],  # noqa: UP006
    ) -> AsyncGenerator[SubmittedJobInfo, None]:
        """Each job's state from DescribeJobs, 100 jobs a call."""
        if not active_jobs:  # the first calls come before __post_init__, from another thread
            return
        by_id = {job.external_jobid: job for job in active_jobs}
        described = {}
        for ids in batch.batches(list(by_id)):
            async with self.status_rate_limiter:
                try:
                    found = self.batch_client.describe_jobs(jobs=ids)["jobs"]
                except Exception as error:  # the next check asks again
                    self.logger.warning(f"cannot describe the AWS Batch jobs: {error}")
                    found = []
            described.update({info["jobId"]: info for info in found})
        self._watch(described)
        for job_id, job in by_id.items():
            info = described.get(job_id)
            status = info["status"] if info else None
            if status == "SUCCEEDED":
                self.report_job_success(job)
                self._deregister_job(job)
            elif status == "FAILED":
                exit_code = info.get("container", {}).get("exitCode")
                reason = info.get("statusReason", "no reason given")
                self.report_job_error(
                    job, msg=f"AWS Batch job {info['jobName']} failed: {reason} (exit code "
                    f"{exit_code})",
                )  # fmt: skip
                self._deregister_job(job)
            else:
                yield job

    def _watch(self, described: dict) -> None:
        """Say once when a job has waited in RUNNABLE too long, and sum up the states."""
        now = time.monotonic()
        for job_id, info in described.items():
            if info["status"] == "RUNNABLE":
                self.runnable_since.setdefault(job_id, now)
            else:
                self.runnable_since.pop(job_id, None)
        waited = [now - since for since in self.runnable_since.values()]
        if waited and max(waited) > self.settings.runnable_timeout and not self.reported_runnable:
            self.reported_runnable = True
            say([batch.runnable_line(len(waited), max(waited), self.settings.job_queue)],
                prefix="etm warning: ")  # fmt: skip
        if now - self.summarised > SUMMARY_SECONDS and described:
            self.summarised = now
            states = Counter(info["status"] for info in described.values())
            say([f"AWS Batch: {', '.join(f'{n} {s}' for s, n in sorted(states.items()))}"])

    def cleanup_job_resources(self, job: SubmittedJobInfo):
        self._terminate_job(job)
        self._deregister_job(job)
