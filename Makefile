# poiflow: two commands to know.
#   make demo   set everything up and run the main job on the bundled Helsinki data
#   make test   set everything up and run every check and test
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= out/demo
PYTEST_ARGS ?=

.PHONY: help install demo test check lint format test-only bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# The install is redone only when what it depends on changed: a re-run is quick and changes nothing.
$(STAMP): pyproject.toml requirements/constraints.txt scripts/bootstrap.sh scripts/pip_install.sh
	@PYTHON=$(PYTHON) bash scripts/bootstrap.sh $(VENV)
	bash scripts/pip_install.sh $(VENV) -c requirements/constraints.txt -e '.[dev,bench,gis,tracking,spark,hdfs,cassandra,opensearch,streaming]'
	@echo "compiling the default matcher's trees for this machine (once; a first run would otherwise)"
	@$(BIN)/python -c "from poiflow.conflate.matcher import load_matcher; load_matcher('default').prepare()"
	@touch $(STAMP)

install: $(STAMP) ## create .venv with poiflow, its extras and the dev tools

demo: install ## run the Helsinki pipeline: OpenStreetMap extract + vendor feed -> golden places
	$(BIN)/poiflow run examples/helsinki/pipeline.yaml --output $(DEMO_OUT)
	$(BIN)/poiflow summary $(DEMO_OUT)/records.parquet
	$(BIN)/poiflow publish search $(DEMO_OUT)
	$(BIN)/poiflow search $(DEMO_OUT) "stokman" --near 60.17,24.94 --limit 3
	$(BIN)/poiflow match $(DEMO_OUT) examples/helsinki/vendor_feed.csv -o $(DEMO_OUT)/vendor_matches.csv
	$(BIN)/poiflow explain $(DEMO_OUT) vendor_feed:V1001
	@echo "Golden places: $(DEMO_OUT)/places.parquet; each record's place: $(DEMO_OUT)/membership.parquet;"
	@echo "scored pairs: $(DEMO_OUT)/pairs.parquet; quality checks: $(DEMO_OUT)/checks.parquet"
	@echo "Report (open it in a browser): $(DEMO_OUT)/report.html"
	@echo "Why a place says what it says, or why two records are one place: poiflow explain --help"
	@$(BIN)/python -c "import json; m = json.load(open('$(DEMO_OUT)/run.json'))['mlflow']; \
		print('MLflow run id:', m['run_id'], '(store:', m['tracking_uri'] + ')')"

check: install ## lint, format check, strict types, import layers
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

test: check ## everything: checks, then the whole test suite (installs what the server tests run)
	@bash scripts/install_test_servers.sh
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test-only: install ## the test suite without the checks (PYTEST_ARGS='-m server' for server tests alone)
	$(BIN)/pytest $(PYTEST_ARGS)

format: install ## rewrite the code in the house format
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

bench: install ## run the benchmarks (prints figures; see benchmarks/RESULTS.md)
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/conflate.py
	$(BIN)/python benchmarks/vs_splink.py
	$(BIN)/python benchmarks/generalize.py

clean: ## remove the virtualenv and outputs
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
