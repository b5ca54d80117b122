"""The rules' parameters as a job process and the main process give them (etm.run)."""

import gc
import os
import subprocess
import sys
import threading
from pathlib import Path

import yaml

from etm.config import load_settings, read_schema
from etm.grid import Chip
from etm.inventory import ChipMonth, Verification
from etm.plan import CONTAINER, mosaic_resources, policy, publications
from etm.run import Process, exit_promptly

REPO = Path(__file__).resolve().parents[2]
TILE6 = "r50.0_tile6"


def settings(**changes):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return load_settings({**config, **changes}, read_schema(REPO))


def test_a_tile_baseline_reads_the_tile_prefixes_first_product_and_configured_chips():
    on_s3 = Process(settings(), on_s3=True)
    options = on_s3.baseline_options({"tile": TILE6})
    assert options["product"] == on_s3.settings.products[0]
    assert options["prefixes"] and all(p.startswith("s3://") for p in options["prefixes"])
    assert options["prefixes"] == [f"s3://{p}" for p in on_s3.settings.tiles[TILE6].prefixes]
    assert options["chips"] is None  # the team's tiles take the chips found
    local = Process(settings(), on_s3=False).baseline_options({"tile": TILE6})
    assert local["prefixes"] == list(on_s3.settings.tiles[TILE6].prefixes)


def test_a_rerun_is_the_team_command_with_quoted_values_and_one_marker_per_chip():
    config = settings(missing_chips="rerun", chip_rerun_command="model {prefix} {chip} {year}")
    process = Process(config, on_s3=True)
    wildcards = {"tile": TILE6, "chip": "chip43.4N-102.8E", "year": "2020"}
    prefix = config.tiles[TILE6].prefixes[0]
    assert process.rerun_command(wildcards) == f"model s3://{prefix} chip43.4N-102.8E 2020"
    chip = Chip.parse("chip43.4N-102.8E")
    missing = [ChipMonth(TILE6, chip, "etasw", 2020, 7), ChipMonth(TILE6, chip, "netet", 2020, 8)]
    process.policy = policy(config, Verification(config, {}, {}, missing, {}, []))
    assert process.rerun_markers({"tile": TILE6, "year": "2020"}) == [
        f"logs/{config.key}/reruns/{TILE6}/2020/chip43.4N-102.8E.json"
    ]
    assert process.rerun_markers({"tile": TILE6, "year": "2021"}) == []


def test_the_catalog_names_each_item_in_the_order_of_the_publications():
    config = settings(license="other", license_url="https://example.org/terms")
    process = Process(config, on_s3=False)
    process.publications = publications(config)
    options = process.catalog_options
    assert options["hrefs"] == [f"{p.name}.json" for p in process.publications]
    assert options["collections"] == process.collections
    assert (options["license"], options["license_url"]) == ("other", "https://example.org/terms")
    # The indexes name the local output prefix by its absolute path, one on S3 by its URL.
    assert options["base"] == os.path.abspath(config.output)
    assert process.collection_files == [
        f"{config.output}/{c}/collection.json" for c in process.collections
    ]
    # On S3 the Items' texts are kept in the work area, for any machine: each Item's among
    # those its region period's job kept.
    assert (options["kept"], options["kept_by_region"]) == (None, None)
    on_s3 = Process(config, on_s3=True, work_prefix="s3://ws-work/etm/")
    on_s3.publications = process.publications
    kept = f"ws-work/etm/stac_items/{config.output}"
    assert on_s3.catalog_options["kept"] == kept
    assert on_s3.catalog_options["base"] == f"s3://{config.output}"
    by_href = dict(zip(options["hrefs"], on_s3.catalog_options["kept_by_region"], strict=True))
    assert by_href[f"tiles/{TILE6}/etasw/2020/etasw_202007.json"] == by_href[
        "mosaic/etasw/2020/etasw_202007.json"
    ] == f"{kept}/mosaic/etasw/2020/etasw_202007.ndjson"  # fmt: skip
    assert len(set(on_s3.catalog_options["kept_by_region"])) == len(
        {(p.product, p.period) for p in process.publications}
    )


def test_a_mosaic_job_holds_a_container_its_threads_and_its_memory():
    resources = mosaic_resources(settings(gdal_cache_mb=512, mosaic_threads=3))
    assert {k: resources[k] for k in CONTAINER} == {"containers": 1, "container_slots": 1}
    assert resources["cpus"] == 3
    assert resources["mem_mb"] == 512 + 992


def test_the_main_process_walks_every_object_never_while_planning_and_seldom_after(tmp_path):
    from etm.run import FULL_COLLECTIONS_AFTER, FULL_COLLECTIONS_WHILE_PLANNING, MainProcess

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)  # Python's defaults
        process = MainProcess(settings(enduser_cog_output=str(tmp_path)), on_s3=False)
        assert gc.get_threshold() == (700, 10, FULL_COLLECTIONS_WHILE_PLANNING)
        process.start()
        assert gc.get_threshold() == (700, 10, FULL_COLLECTIONS_AFTER) != (700, 10, 10)
        process.end(True, [])
    finally:
        gc.set_threshold(*before)


#: A process that leaves a reference cycle (as Snakemake's DAG is) for Python's exit, with
#: or without etm's main process; the cycle says when it is freed.
CYCLE_AT_EXIT = """
import gc, os, sys
from pathlib import Path
import yaml
from etm.config import load_settings, read_schema
from etm.run import MainProcess

if sys.argv[1] == "main":
    config = yaml.safe_load(Path("config/config.yaml").read_text())
    config["enduser_cog_output"] = sys.argv[2]
    process = MainProcess(load_settings(config, read_schema(Path("."))), on_s3=False)

class Node:
    def __del__(self, write=os.write):
        write(1, b"freed")

gc.collect()  # no young collection can come before the exit's
node = Node()
node.itself = node
del node
"""


def test_the_main_process_leaves_its_objects_to_the_system_at_exit(tmp_path):
    def freed(process: str) -> bool:
        script = [sys.executable, "-c", CYCLE_AT_EXIT, process, str(tmp_path)]
        run = subprocess.run(script, cwd=REPO, capture_output=True, text=True, check=True)
        return run.stdout == "freed"

    assert freed("alone")  # Python collects cycles at exit: what a dry run paid for its DAG
    assert not freed("main")


def test_a_run_that_ended_leaves_python_nothing_to_wait_for_at_exit():
    # As Snakemake's scheduler starts them: not daemons, so Python waits for them at exit.
    woken = []
    timer = threading.Timer(60, woken.append, ["scheduler"])
    timer.start()
    exit_promptly()
    timer.join(timeout=10)
    assert not timer.is_alive() and woken == []
