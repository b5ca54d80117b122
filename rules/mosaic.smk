# One rule shape for every period: a month mosaics chips; a year (annual: true) sums or
# averages a tile's 12 monthly COGs; the region mosaics its tiles' COGs of the period.


rule mosaic_tile:
    input:
        sources=inputs_of(tile_sources),
    output:
        cog=stored(published(TILE, "tif")),
        item=stored(published(TILE, "json")),
    log:
        "logs/mosaic_tile/{tile}/{year}/{product}_{period}.log",
    conda:
        "../envs/etm.yaml"
    threads: SETTINGS.mosaic_threads
    resources:
        containers=1,
        cpus=lambda wildcards, threads: threads,
        mem_mb=SETTINGS.gdal_cache_mb + 512,
    params:
        cog=SETTINGS.cog,
        gdal_cache_mb=SETTINGS.gdal_cache_mb,
        names=names_of(tile_sources),
        missing=still_missing,
        combine=lambda wildcards: aggregation(wildcards) or "first",
        stac=lambda wildcards: dict(
            item_href=f"{TILE.format(**wildcards)}.json",
            product=wildcards.product,
            tile=wildcards.tile,
            period=wildcards.period,
            aggregation=aggregation(wildcards),
        ),
    message:
        "Publish tile {wildcards.tile}, {wildcards.product} {wildcards.period}"
    script:
        "../scripts/mosaic.py"


rule mosaic_region:
    input:
        sources=inputs_of(region_sources),
    output:
        cog=stored(published(REGION, "tif")),
        item=stored(published(REGION, "json")),
        thumbnail=report(
            stored(published(REGION, "png")),
            category="Quicklooks",
            subcategory="{product}",
            labels={"product": "{product}", "period": "{period}"},
        ),
    log:
        "logs/mosaic_region/{year}/{product}_{period}.log",
    conda:
        "../envs/etm.yaml"
    threads: SETTINGS.mosaic_threads
    resources:
        containers=1,
        cpus=lambda wildcards, threads: threads,
        mem_mb=SETTINGS.gdal_cache_mb + 512,
    params:
        cog=SETTINGS.cog,
        gdal_cache_mb=SETTINGS.gdal_cache_mb,
        names=names_of(region_sources),
        combine="first",
        stac=lambda wildcards: dict(
            item_href=f"{REGION.format(**wildcards)}.json",
            product=wildcards.product,
            tile=None,
            period=wildcards.period,
            aggregation=aggregation(wildcards),
        ),
    message:
        "Publish the region, {wildcards.product} {wildcards.period}"
    script:
        "../scripts/mosaic.py"
