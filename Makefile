# The two commands of the README:
#   make demo   installs everything into .venv, then runs the workflow on the bundled sample
#   make test   installs everything into .venv, then runs the format checks, lint, the docs'
#               strict build and the tests
# and for a developer's loop:
#   make test-fast  the same without the slow fault, kill and container tests
# and the documentation site (docs/, mkdocs.yml), which make test builds with --strict:
#   make docs       builds it into site/
# and the job image of profiles/aws:
#   make image  builds etm:<version> from the Dockerfile (BASE=<image> for another base)
#   make lock   pins requirements.txt's every dependency with hashes (requirements.lock)
# and the map page's script, bundled by npm from web/package-lock.json (demo and test do it):
#   make web
PYTHON ?= python3
BIN := .venv/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= etm:$(VERSION)
CONTAINER ?= $(shell command -v docker > /dev/null && echo docker || echo podman)

.PHONY: demo test test-fast lint docs image lock system-packages web

# editable_mode=compat: a plain path entry, so that Snakemake finds etm's plugins
# The runtime exactly as the job image installs it (requirements.lock, with hashes), then
# the tests' tools.
.venv/installed: requirements.lock requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv .venv
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps --config-settings editable_mode=compat --editable .
	touch $@

# requirements.lock: every package requirements.txt needs, pinned, with their hashes.
lock: .venv/installed
	$(BIN)/pip-compile --quiet --allow-unsafe --generate-hashes --no-emit-index-url \
	  --no-emit-find-links --strip-extras --output-file=requirements.lock requirements.txt

sample/.written: .venv/installed etm/sample.py
	$(BIN)/python -m etm.sample sample
	touch $@

web/dist/map.js: web/package.json web/package-lock.json $(wildcard web/*.js)
	@command -v npm > /dev/null || { $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq nodejs npm > /dev/null; }
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

web: web/dist/map.js

demo: sample/.written web/dist/map.js
	$(BIN)/snakemake --profile profiles/local --configfile config/sample.yaml
	@echo "COGs, STAC catalog, quicklooks: sample/ws-enduser/USA/demo/  reports, heatmaps: reports/"

# Batch's instances are x86_64: the same image from an arm64 laptop.
image:
	$(CONTAINER) build --platform linux/amd64 $(if $(BASE),--build-arg BASE=$(BASE)) \
	  --tag $(IMAGE) .

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

# --strict: a broken link or anchor, a missing page or one left out of the nav fails.
docs: .venv/installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint docs system-packages web/dist/map.js
	$(BIN)/pytest

test-fast: lint docs system-packages web/dist/map.js
	$(BIN)/pytest -m "not slow"
