# One rule shape for every period: a month mosaics chips; a year (annual: true) sums or
# averages a tile's 12 monthly COGs; the region mosaics its tiles' COGs of the period (its
# quicklook is drawn after every region period: rule quicklooks).


# Once per tile: no input and no params, so that nothing but its absence reruns it (a rerun
# of this ancient input would leave its months out: snakemake issue #4166). Its job lists
# the tile's chips and picks the files itself.
rule chip_baseline:
    output:
        baseline=kept(plan.BASELINE),
    log:
        kept("chip_baseline/{tile}.log"),
    resources:
        **plan.mosaic_resources(SETTINGS),
    run:
        # Like the mosaics below: a thread of Snakemake's process (profiles/default).
        if failed := baseline_job(output, RUN.baseline_options(wildcards), log):
            raise failed


rule mosaic_tile:
    input:
        sources=sources,
        baseline=baseline,
        outdated=outdated,
    output:
        cog=published(plan.TILE, "tif"),
        item=published(plan.TILE, "json"),
    log:
        job=kept(plan.TILE_LOG),
        findings=kept(plan.FINDINGS_LOG),
        provenance=kept(plan.PROVENANCE_LOG),
    group:
        container
    threads: SETTINGS.mosaic_threads
    resources:
        **plan.mosaic_resources(SETTINGS),
    params:
        plan=period_plan,
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
    log:
        job=kept(plan.REGION_LOG),
