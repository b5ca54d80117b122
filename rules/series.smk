from etm import series


# series_store: true. Per product, after its month COGs: one Zarr store of every published
# month, for time series. It is the only writer of its store (one job per product and run,
# one run per output prefix); its output is the record written once the store is in place.
# The job reads the COGs where they are (headers, and the months to read again) and updates
# the store itself, object by object, locally or on S3 (etm.series.update_store).
rule series_store:
    input:
        cogs=lambda w: [
            published(p.name, "tif", retrieve=False)
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
        store=lambda w: series.store_options(
            SETTINGS, RUN.publications, w.product, RUN.named
        ),
    message:
        "Series store of {wildcards.product}: the months whose COGs changed"
    script:
        "../scripts/series_store.py"
