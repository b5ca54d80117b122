# One rule shape for every period: a month mosaics chips; a year (annual: true) sums or
# averages a tile's 12 monthly COGs; the region mosaics its tiles' COGs of the period.


# Once per tile: no input, so that it never reruns (and its months never wait for it) once
# it exists. Its job lists the tile's chips and picks the files itself.
rule chip_baseline:
    output:
        baseline=plan.BASELINE,
    log:
        "logs/chip_baseline/{tile}.log",
    resources:
        **plan.CONTAINER,
    params:
        baseline=RUN.baseline_options,
    run:
        # Like the mosaics below: a thread of Snakemake's process (profiles/default).
        if failed := baseline_job(output, params, log):
            raise failed


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
    threads: SETTINGS.mosaic_threads
    resources:
        **plan.mosaic_resources(SETTINGS),
    params:
        publish=publish_options,
    run:
        # A thread of Snakemake's process (profiles/default); an etm error, logged already,
        # fails the job without a traceback.
        if failed := publish_job(input, output, params, threads, resources, log):
            raise failed


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
