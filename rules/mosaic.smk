rule mosaic_tile:
    input:
        chips=inputs_of(tile_sources),
    output:
        cog=stored(TILE_COG),
    log:
        "logs/mosaic_tile/{tile}/{product}_{year}{month}.log",
    conda:
        "../envs/etm.yaml"
    threads: 1
    resources:
        containers=1,
        cpus=lambda wildcards, threads: threads,
        mem_mb=SETTINGS.gdal_cache_mb + 512,
    params:
        cog=SETTINGS.cog,
        gdal_cache_mb=SETTINGS.gdal_cache_mb,
        names=names_of(tile_sources),
    message:
        "Mosaic tile {wildcards.tile}, {wildcards.product} {wildcards.year}-{wildcards.month}"
    script:
        "../scripts/mosaic.py"


rule mosaic_region:
    input:
        tiles=inputs_of(region_sources),
    output:
        cog=stored(REGION_COG),
    log:
        "logs/mosaic_region/{product}_{year}{month}.log",
    conda:
        "../envs/etm.yaml"
    threads: 1
    resources:
        containers=1,
        cpus=lambda wildcards, threads: threads,
        mem_mb=SETTINGS.gdal_cache_mb + 512,
    params:
        cog=SETTINGS.cog,
        gdal_cache_mb=SETTINGS.gdal_cache_mb,
        names=names_of(region_sources),
    message:
        "Mosaic the region, {wildcards.product} {wildcards.year}-{wildcards.month}"
    script:
        "../scripts/mosaic.py"
