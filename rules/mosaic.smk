rule mosaic_tile:
    input:
        chips=tile_chips,
    output:
        cog=TILE_COG,
    log:
        "logs/mosaic_tile/{tile}/{product}_{year}{month}.log",
    retries: 1
    conda:
        "../envs/etm.yaml"
    threads: 1
    resources:
        containers=1,
        mem_mb=SETTINGS.gdal_cache_mb + 512,
    params:
        cog=SETTINGS.cog,
        gdal_cache_mb=SETTINGS.gdal_cache_mb,
    message:
        "Mosaic tile {wildcards.tile}, {wildcards.product} {wildcards.year}-{wildcards.month}"
    script:
        "../scripts/mosaic.py"


rule mosaic_region:
    input:
        tiles=expand(TILE_COG, tile=SETTINGS.tiles, allow_missing=True),
    output:
        cog=REGION_COG,
    log:
        "logs/mosaic_region/{product}_{year}{month}.log",
    retries: 1
    conda:
        "../envs/etm.yaml"
    threads: 1
    resources:
        containers=1,
        mem_mb=SETTINGS.gdal_cache_mb + 512,
    params:
        cog=SETTINGS.cog,
        gdal_cache_mb=SETTINGS.gdal_cache_mb,
    message:
        "Mosaic the region, {wildcards.product} {wildcards.year}-{wildcards.month}"
    script:
        "../scripts/mosaic.py"
