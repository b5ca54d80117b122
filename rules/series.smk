from etm import series


# series_store: true. Per product, after its month COGs: one Zarr store of every published
# month, for time series. It is the only writer of its store (one job per product and run,
# one run per output prefix); its output is the record written once the store is in place.
rule series_store:
    input:
        cogs=lambda w: [
            published(p.name, "tif")
            for p in series.store_sources(RUN.publications, w.product)
        ],
    output:
        record=kept("series_store/{product}.json"),
    log:
        kept("series_store/{product}.log"),
    localrule: True
    conda:
        "../envs/etm.yaml"
    params:
        sources=lambda w: [
            (f"{p.name}.tif", str(p.period))
            for p in series.store_sources(RUN.publications, w.product)
        ],
        store=lambda w: plan.published(SETTINGS, f"series/{w.product}", "zarr"),
    message:
        "Series store of {wildcards.product}: the months whose COGs changed"
    script:
        "../scripts/series_store.py"
