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
	# python-ishare (the scheme's 2.x client, tests/test_e2e_ishare_versions.py) pins
	# cryptography<42, which the node's >=43 excludes; it runs with the newer one, so it is
	# installed without its pins (its own needs, PyJWT and requests, are in the dev extra).
	$(BIN)/pip install --quiet --no-deps 'python-ishare==0.0.3'
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
