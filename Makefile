# dsgo-node: `make demo` and `make test` set everything up from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The development OpenID Provider (npm oidc-provider), installed from its committed lock file.
DEVOP := tools/dev-op/node_modules/.package-lock.json

.PHONY: all install demo test bench lint format clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(DEVOP): tools/dev-op/package.json tools/dev-op/package-lock.json
	cd tools/dev-op && npm ci --no-audit --no-fund --loglevel=error

install: $(STAMP) $(DEVOP)

demo: $(STAMP) $(DEVOP)
	$(BIN)/python examples/demo.py

test: $(STAMP) $(DEVOP)
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
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis bench/out demo-data tools/dev-op/node_modules tests/out
