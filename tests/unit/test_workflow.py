"""etm.workflow against a stand-in of the few attributes of Snakemake's workflow it uses."""

from types import SimpleNamespace

import yaml
from conftest import REPO

from etm.workflow import batch_queue, cap_jobs_in_flight


class Resources(dict):
    """Snakemake's global resources: a name's value, and registering one."""

    def __getitem__(self, name):
        return SimpleNamespace(value=self.get(name))


def workflow(nodes, cores, executor="etm-batch"):
    resources = Resources(_nodes=nodes)
    return SimpleNamespace(
        global_resources=resources,
        register_resource=resources.__setitem__,
        resource_settings=SimpleNamespace(cores=cores),
        executor_plugin=SimpleNamespace(name=executor),
        executor_settings=SimpleNamespace(region="us-west-2", job_queue="etm"),
    )


SETTINGS = SimpleNamespace(max_concurrent_containers=60, jobs_per_container=4)


def test_a_cloud_run_caps_containers_cores_and_jobs_per_container():
    cloud = workflow(nodes=1000, cores=220)
    assert cap_jobs_in_flight(cloud, SETTINGS)
    assert dict(cloud.global_resources) == {"_nodes": 60, "container_slots": 4, "cpus": 220}


def test_a_local_run_caps_its_job_processes():
    local = workflow(nodes=None, cores=2)
    assert not cap_jobs_in_flight(local, SETTINGS)
    assert dict(local.global_resources) == {"_nodes": None, "containers": 60}


def test_only_the_batch_executor_has_a_queue():
    assert batch_queue(workflow(1, 1)) == ("us-west-2", "etm")
    assert batch_queue(workflow(1, 1, executor="cluster-generic")) is None


def test_a_profile_drops_snakemakes_records_only_where_no_rerun_trigger_reads_them():
    # Every trigger but mtime compares a job with the record of its outputs' last run.
    default = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    for path in (REPO / "profiles").glob("*/config.yaml"):
        profile = {**default, **yaml.safe_load(path.read_text())}
        if profile.get("drop-metadata"):
            assert profile["rerun-triggers"] == ["mtime"], path


def test_the_aws_profile_weighs_at_least_the_containers_it_starts_at_once():
    # Fewer would leave containers unstarted until the next job ends.
    profile = yaml.safe_load((REPO / "profiles" / "aws" / "config.yaml").read_text())
    assert profile["scheduler-subsample"] >= profile["jobs"]
