# The two commands of the README:
#   make demo   installs everything into .venv, then runs the workflow on the bundled sample
#   make test   installs everything into .venv, then runs the format checks, lint and tests
PYTHON ?= python3
BIN := .venv/bin

.PHONY: demo test

# editable_mode=compat: a plain path entry, so that Snakemake finds the etm-s3 storage plugin
.venv/installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv .venv
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps --config-settings editable_mode=compat --editable .
	touch $@

sample/.written: .venv/installed etm/sample.py
	$(BIN)/python -m etm.sample sample
	touch $@

demo: sample/.written
	$(BIN)/snakemake --configfile config/sample.yaml --cores all
	@echo "COGs: sample/ws-enduser/USA/demo/  verifier report: reports/verifier.txt"

test: .venv/installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/pytest
