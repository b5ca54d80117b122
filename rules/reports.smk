import os

from etm.report import MISSING_CSV, SNAPSHOT_JSON, SUMMARY_RST, heatmap_path


# Snakemake's HTML report opens on the verifier's summary (written when the workflow loads).
report: os.path.abspath(f"{SETTINGS.reports_dir}/{SUMMARY_RST}")


# What operators and end users see beside the COGs. Both rules run where Snakemake runs:
# they read the main process's verification, or every published Item.


rule completeness:
    input:
        local(f"{SETTINGS.reports_dir}/{SNAPSHOT_JSON}"),
    output:
        heatmaps=[
            report(
                local(heatmap_path(SETTINGS.reports_dir, tile)),
                category="Completeness",
                labels={"tile": tile, "shows": "chip files by month"},
            )
            for tile in SETTINGS.tiles
        ],
        missing=report(
            local(f"{SETTINGS.reports_dir}/{MISSING_CSV}"),
            category="Completeness",
            labels={"tile": "all", "shows": "missing chip files"},
        ),
    log:
        "logs/completeness.log",
    localrule: True
    conda:
        "../envs/etm.yaml"
    message:
        "Draw the completeness heatmaps"
    script:
        "../scripts/completeness.py"


rule stac_catalog:
    input:
        stac_items=[published(p.name, "json") for p in RUN.publications],
    output:
        catalog=published("catalog", "json"),
        collections=[
            stored(f"{SETTINGS.output}/{plan.collection_href(collection)}")
            for collection in RUN.collections
        ],
        index=published("items", "ndjson"),
    log:
        "logs/stac_catalog.log",
    localrule: True
    conda:
        "../envs/etm.yaml"
    params:
        hrefs=[f"{p.name}.json" for p in RUN.publications],
        collections=RUN.collections,
        license=SETTINGS.license,
        license_url=SETTINGS.license_url,
    message:
        f"Write the STAC catalog of {len(RUN.publications)} items"
    script:
        "../scripts/catalog.py"
