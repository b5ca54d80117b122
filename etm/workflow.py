"""What the workflow reads from, and sets on, Snakemake's own ``workflow`` object, so that
``rules/common.smk`` only connects.

Snakemake gives no public API for these: each function names the attributes it uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from snakemake.resources import GroupResources

from etm import plan
from etm.config import Settings


def cap_jobs_in_flight(workflow: Any, settings: Settings) -> bool:
    """Cap the jobs in flight: ``max_concurrent_containers``, and ``--cores`` on clusters
    and clouds too, ``jobs_per_container`` jobs at a time per container; and name each
    container's group of jobs (:func:`etm.plan.containers`) after its pattern (Snakemake
    knows the pattern of a group given as a string only, not of one a function names).

    Parameters
    ----------
    workflow : snakemake.workflow.Workflow
        The running workflow (``workflow`` in a Snakefile).
    settings : Settings
        The run's settings.

    Returns
    -------
    bool
        Whether jobs go to a cluster or cloud (each job or group of jobs a container).
    """
    nodes = workflow.global_resources["_nodes"].value
    if nodes is None:
        # Local execution: each job is a process; `containers` counts them.
        if "containers" not in workflow.global_resources:
            workflow.register_resource("containers", settings.max_concurrent_containers)
        return False
    workflow.register_resource("_nodes", min(nodes, settings.max_concurrent_containers))
    workflow.register_resource("container_slots", settings.jobs_per_container)
    workflow.parent_groupids.update(plan.containers(settings))
    # Snakemake stops counting cores once it submits jobs to a cluster or cloud;
    # `cpus` (each job's threads) keeps --cores a cap on the cores in flight.
    if workflow.resource_settings.cores:
        workflow.register_resource("cpus", workflow.resource_settings.cores)
    return True


def keep_containers_whole(workflow: Any) -> None:
    """Make each container's groups of jobs one group job: add the group components of
    :data:`etm.plan.CONTAINER_COMPONENTS` to those ``--group-components`` gives, which
    would otherwise replace them and make each period its own container.

    Snakemake sets its group settings once the Snakefile is parsed, before it builds the
    DAG: call this from the group function, which it calls while it builds the DAG.

    Parameters
    ----------
    workflow : snakemake.workflow.Workflow
        The running workflow.
    """
    given = workflow.group_settings.group_components
    if not plan.CONTAINER_COMPONENTS.keys() <= given.keys():
        workflow.group_settings.group_components = {**plan.CONTAINER_COMPONENTS, **given}


def submitted_resources(workflow: Any, unit: Any) -> Mapping[str, Any]:
    """The resources a job or group job is submitted with: a dry run's own sizing of a
    group sums its levels (a year after its months), as if it ran locally; a cluster's or
    cloud's takes the largest level, as Snakemake's ``GroupJob.resources`` do then."""
    if not (unit.is_group() and workflow.local_exec):
        return unit.resources
    return GroupResources.basic_layered(
        toposorted_jobs=unit.toposorted, constraints=unit.global_resources, run_local=False,
        additive_resources=["runtime"], sortby=["runtime"],
    )  # fmt: skip


def containers(workflow: Any) -> list[str]:
    """The line describing the run's containers as Snakemake formed them (each group of
    jobs, or job submitted alone), with their vCPUs and memory.

    Parameters
    ----------
    workflow : snakemake.workflow.Workflow
        The running workflow, its DAG built.

    Returns
    -------
    list[str]
        One line (:meth:`etm.plan.Containers.describe`).
    """
    dag, units = workflow.dag, {}
    for job in dag.needrun_jobs():
        unit = dag.get_job_group(job) or job
        # plan.CONTAINER: not a local rule's job
        if unit.resources.get("container_slots") and id(unit) not in units:
            units[id(unit)] = submitted_resources(workflow, unit)
    shapes = [(int(r["_cores"]), int(r.get("mem_mb", 0))) for r in units.values()]
    nodes = workflow.global_resources["_nodes"].value
    cores = workflow.resource_settings.cores
    return [plan.Containers(tuple(shapes), cores, nodes).describe()]


def batch_queue(workflow: Any) -> tuple[str, str] | None:
    """With the etm-batch executor (profiles/aws): the region and job queue of the run's
    containers, for its lock; otherwise None.

    Parameters
    ----------
    workflow : snakemake.workflow.Workflow
        The running workflow.
    """
    if workflow.executor_plugin.name != "etm-batch":
        return None
    return workflow.executor_settings.region, workflow.executor_settings.job_queue
