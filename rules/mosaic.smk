# One rule shape for every period: a month mosaics chips; a year (annual: true) sums or
# averages a tile's 12 monthly COGs; the region mosaics its tiles' COGs of the period.


# Once per tile: no input, so that it never reruns (and its months never wait for it) once
# it exists. Its job lists the tile's chips and picks the files itself.
rule chip_baseline:
    output:
        baseline=plan.BASELINE,
    log:
        "logs/chip_baseline/{tile}.log",
    conda:
        "../envs/etm.yaml"
    resources:
        containers=1,
        container_slots=1,
    params:
        prefixes=lambda wildcards: [
            RUN.named(p) for p in SETTINGS.tiles[wildcards.tile].prefixes
        ],
        product=SETTINGS.products[0],
        chips=lambda wildcards: plan.chip_names(SETTINGS, wildcards.tile),
    message:
        "Read the usual NaN share of tile {wildcards.tile}'s chips"
    script:
        "../scripts/chip_baseline.py"


rule mosaic_tile:
    input:
        sources=sources,
        baseline=baseline,
    output:
        cog=published(plan.TILE, "tif"),
        item=published(plan.TILE, "json"),
    log:
        job=plan.TILE_LOG,
        findings=plan.FINDINGS_LOG,
    conda:
        "../envs/etm.yaml"
    threads: SETTINGS.mosaic_threads
    resources:
        containers=1,
        container_slots=1,
        cpus=lambda wildcards, threads: threads,
        mem_mb=plan.job_memory_mb(SETTINGS),
    params:
        publish=publish_options,
    message:
        "Publish tile {wildcards.tile}, {wildcards.product} {wildcards.period}"
    script:
        "../scripts/mosaic.py"


use rule mosaic_tile as mosaic_region with:
    input:
        sources=sources,
    output:
        cog=published(plan.REGION, "tif"),
        item=published(plan.REGION, "json"),
        thumbnail=report(
            published(plan.REGION, "png"),
            category="Quicklooks",
            subcategory="{product}",
            labels={"product": "{product}", "period": "{period}"},
        ),
    log:
        job=plan.REGION_LOG,
    message:
        "Publish the region, {wildcards.product} {wildcards.period}"
