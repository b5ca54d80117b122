# The job image of profiles/aws: the pinned runtime of requirements.txt and the etm package,
# checked when it is built (etm check-image: both storage plugins, every module, GDAL's COG).
#   make image                  builds etm:<version in pyproject.toml> on the base below
#   make image BASE=<image>     on another base that has python3 with its venv module
ARG BASE=docker.io/library/python:3.11.15-slim-bookworm
FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/etm PATH=/opt/etm/bin:${PATH}
RUN python3 -m venv /opt/etm
WORKDIR /opt/etm/src
COPY requirements.txt pyproject.toml ./
RUN pip install -r requirements.txt
COPY etm ./etm
COPY snakemake_storage_plugin_etm_s3 ./snakemake_storage_plugin_etm_s3
COPY snakemake_executor_plugin_etm_batch ./snakemake_executor_plugin_etm_batch
RUN pip install --no-deps . && etm check-image
# Jobs need no privilege: they read chips and write COGs through S3 and their own folder.
RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin etm \
    && mkdir /workflow && chown etm:etm /workflow
USER etm
# Snakemake deploys the workflow's sources into the job's working directory.
WORKDIR /workflow
