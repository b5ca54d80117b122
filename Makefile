# The two commands of the README:
#   make demo   installs everything into .venv, then runs the workflow on the bundled sample
#   make test   installs everything into .venv, then runs the format checks, lint and tests
# and for a developer's loop:
#   make test-fast  the same without the slow fault, kill and container tests
# and the job image of profiles/aws:
#   make image  builds etm:<version> from the Dockerfile (BASE=<image> for another base)
# and the map page's script, bundled by npm from web/package-lock.json (demo and test do it):
#   make web
PYTHON ?= python3
BIN := .venv/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= etm:$(VERSION)
BASE ?= docker.io/library/python:3.11.15-slim-bookworm
CONTAINER ?= $(shell command -v docker > /dev/null && echo docker || echo podman)

.PHONY: demo test test-fast lint image system-packages web

# editable_mode=compat: a plain path entry, so that Snakemake finds etm's plugins
.venv/installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv .venv
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps --config-settings editable_mode=compat --editable .
	touch $@

sample/.written: .venv/installed etm/sample.py
	$(BIN)/python -m etm.sample sample
	touch $@

web/dist/map.js: web/package.json web/package-lock.json web/map.js
	@command -v npm > /dev/null || { $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq nodejs npm > /dev/null; }
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

web: web/dist/map.js

demo: sample/.written web/dist/map.js
	$(BIN)/snakemake --profile profiles/local --configfile config/sample.yaml
	@echo "COGs, STAC catalog, quicklooks: sample/ws-enduser/USA/demo/  reports, heatmaps: reports/"

image:
	$(CONTAINER) build --build-arg BASE=$(BASE) --tag $(IMAGE) .

# gdal-bin: the GDAL command line the benchmark compares with; chromium: the report test;
# podman, buildah, runc and mmdebstrap: the job image, built and run by the AWS Batch test.
system-packages:
	@command -v gdalbuildvrt > /dev/null && command -v chromium > /dev/null && \
	  command -v podman > /dev/null && command -v mmdebstrap > /dev/null || \
	  { $(SUDO) apt-get update -qq && \
	    $(SUDO) apt-get install -y -qq gdal-bin chromium podman buildah runc mmdebstrap \
	      > /dev/null; }

lint: .venv/installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile rules

test: lint system-packages web/dist/map.js
	$(BIN)/pytest

test-fast: lint system-packages web/dist/map.js
	$(BIN)/pytest -m "not slow"
