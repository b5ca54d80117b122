# The job image of profiles/aws: exactly the pinned runtime of requirements.txt.
#   docker build -t etm:0.1.0 .   then push it to ECR and name it in profiles/aws
FROM python:3.11.7-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/etm
COPY requirements.txt pyproject.toml ./
RUN pip install -r requirements.txt
COPY etm ./etm
COPY snakemake_storage_plugin_etm_s3 ./snakemake_storage_plugin_etm_s3
RUN pip install --no-deps . && python -c "import etm, snakemake_storage_plugin_etm_s3, rasterio"
# Snakemake deploys the workflow's sources into the job's working directory.
WORKDIR /workflow
