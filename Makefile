# dsgo-node: `make demo` and `make test` set everything up from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Browser assets (YASGUI, Swagger UI) vendored from npm into package data: no page loads from
# another host. npm installs into web/node_modules only (never globally).
ASSETS := node/static/vendor/.installed

.PHONY: all install assets demo test bench lint format clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(ASSETS): web/package.json web/package-lock.json web/vendor_assets.py
	cd web && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	$(PYTHON) web/vendor_assets.py
	touch $(ASSETS)

assets: $(ASSETS)

install: $(STAMP) $(ASSETS)

demo: $(STAMP) $(ASSETS)
	$(BIN)/python examples/demo.py

test: $(STAMP) $(ASSETS)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench.run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis bench/out demo-data web/node_modules \
		node/static/vendor tests/out
