# The job image of profiles/aws: the runtime of requirements.lock (every package pinned, with
# its hashes) and the etm package, checked when it is built (etm check-image: both storage
# plugins, every module a job imports, GDAL's COG driver).
#   make image                  builds etm:<version in pyproject.toml> on the base below
#   make image BASE=<image>     on another base that has python3 with its venv module
# The base is pinned by its digest, so that a tag moved by the registry changes nothing.
# To move to a newer base: `docker buildx imagetools inspect <image:tag>` (or `crane digest
# <image:tag>`) prints the digest of the tag's index; put tag and digest here together.
ARG BASE=docker.io/library/python:3.11.15-slim-bookworm@sha256:d29f48a31a8b408ed19272ca1e7b10ebae13b240a27e862d3d4217c528e2e0c3
FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/etm PATH=/opt/etm/bin:${PATH}
RUN python3 -m venv /opt/etm
WORKDIR /opt/etm/src
COPY requirements.lock pyproject.toml ./
RUN pip install --require-hashes -r requirements.lock
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
