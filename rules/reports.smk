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
        stac_items=[stored(published(p.name, "json")) for p in PUBLICATIONS],
    output:
        catalog=stored(f"{SETTINGS.output}/catalog.json"),
        collections=[
            stored(f"{SETTINGS.output}/{plan.collection_href(product)}")
            for product in CATALOGUED
        ],
    log:
        "logs/stac_catalog.log",
    localrule: True
    conda:
        "../envs/etm.yaml"
    params:
        hrefs=[f"{p.name}.json" for p in PUBLICATIONS],
        products=CATALOGUED,
        license=SETTINGS.license,
    message:
        f"Write the STAC catalog of {len(PUBLICATIONS)} items"
    script:
        "../scripts/catalog.py"
