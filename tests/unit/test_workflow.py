"""etm.workflow against a stand-in of the few attributes of Snakemake's workflow it uses."""

from types import SimpleNamespace

import yaml
from conftest import REPO

from etm.workflow import batch_queue, cap_jobs_in_flight, keep_containers_whole


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
        parent_groupids={},
        group_settings=SimpleNamespace(group_components={"region_{product}_{year}": 5, "other": 2}),
    )


SETTINGS = SimpleNamespace(
    max_concurrent_containers=60, jobs_per_container=4, years_per_container=2,
    years=(2020, 2021), tiles={"r50.0_tile6": None}, products=("etasw",),
)  # fmt: skip


def test_a_cloud_run_caps_containers_cores_and_jobs_per_container():
    cloud = workflow(nodes=1000, cores=220)
    assert cap_jobs_in_flight(cloud, SETTINGS)
    assert dict(cloud.global_resources) == {"_nodes": 60, "container_slots": 4, "cpus": 220}
    # The groups the workflow names, as profiles/aws's group-components know them.
    assert cloud.parent_groupids == {
        "tile_r50.0_tile6_2020-2021": "tile_{tile}_{years}",
        "region_etasw_2020": "region_{product}_{year}",
        "region_etasw_2021": "region_{product}_{year}",
    }


def test_groups_given_on_the_command_line_add_to_the_containers():
    cloud = workflow(nodes=1000, cores=220)
    keep_containers_whole(cloud)
    # Each pattern's groups in one container, whatever --group-components gives besides.
    assert cloud.group_settings.group_components == {
        "tile_{tile}_{years}": 100_000, "region_{product}_{year}": 5, "other": 2,
    }  # fmt: skip


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


def test_the_aws_profile_chooses_again_soon_when_it_weighs_fewer_than_it_starts():
    # Weighing fewer jobs than containers at once leaves containers unstarted until the next
    # choice: with max-jobs-per-timespan, a timespan later, not once the next job ends.
    profile = yaml.safe_load((REPO / "profiles" / "aws" / "config.yaml").read_text())
    if profile["scheduler-subsample"] < profile["jobs"]:
        assert profile["max-jobs-per-timespan"].endswith("/3s")
