import os

from etm.joblog import completeness_job
from etm.report import SNAPSHOT_JSON, SUMMARY_RST, completeness_files
from etm.web import page_files


# Snakemake's HTML report opens on the verifier's summary (written when the workflow loads).
report: os.path.abspath(f"{SETTINGS.reports_dir}/{SUMMARY_RST}")


# What operators and end users see beside the COGs. These rules run where Snakemake runs:
# they read the main process's verification, every published Item, or the built map page.
MAP_PAGE = or_exit(page_files, workflow.basedir) if workflow.is_main_process else {}


rule completeness:
    input:
        local(f"{SETTINGS.reports_dir}/{SNAPSHOT_JSON}"),
    output:
        [
            report(local(path), category="Completeness", labels=labels)
            for path, labels in completeness_files(
                SETTINGS.reports_dir, SETTINGS.tiles
            )
        ],
    log:
        kept("completeness.log"),
    localrule: True
    run:
        # Like the mosaics: a thread of Snakemake's process, with no Python to start.
        if failed := completeness_job(input, log):
            raise failed


rule stac_catalog:
    input:
        # Read by the job from one listing, only those changed since the last catalog.
        stac_items=[published(p.name, "json", retrieve=False) for p in RUN.publications],
    output:
        catalog=published("catalog", "json"),
        collections=[stored(path) for path in RUN.collection_files],
        indexes=[stored(path) for path in RUN.index_files],
    log:
        kept("stac_catalog.log"),
    localrule: True
    conda:
        "../envs/etm.yaml"
    params:
        catalog=RUN.catalog_options,
    script:
        "../scripts/catalog.py"


# After every region COG: one colour scale per product and kind, fitted over the archive;
# only the quicklooks whose scale or COG changed are drawn again (updated, not removed; on
# S3, where Snakemake cannot update, the job reads the published ones itself).
rule quicklooks:
    input:
        # Read by the job where they are, their coarsest overviews mostly.
        cogs=[published(p.name, "tif", retrieve=False) for p in RUN.regions],
    output:
        pngs=[
            report(
                (
                    published(p.name, "png")
                    if PROVIDER
                    else update(published(p.name, "png"))
                ),
                category="Quicklooks",
                subcategory=p.product,
                labels={"product": p.product, "period": str(p.period)},
            )
            for p in RUN.regions
        ],
    log:
        kept("quicklooks.log"),
    localrule: True
    conda:
        "../envs/etm.yaml"
    params:
        quicklooks=RUN.quicklook_options,
    script:
        "../scripts/quicklooks.py"


rule map_page:
    input:
        page=[local(path) for path in MAP_PAGE.values()],
        # After the catalog; a new catalog does not redo the page.
        catalog=ancient(rules.stac_catalog.output.catalog),
    output:
        page=[published(*name.rsplit(".", 1)) for name in MAP_PAGE],
    log:
        kept("map_page.log"),
    localrule: True
    conda:
        "../envs/etm.yaml"
    script:
        "../scripts/map_page.py"
