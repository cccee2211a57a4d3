# dsgo-node: `make demo` and `make test` set everything up from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The development OpenID Provider (npm oidc-provider), installed from its committed lock file.
DEVOP := tools/dev-op/node_modules/.package-lock.json
# Browser assets (YASGUI, Swagger UI) vendored from npm into package data: no page loads from
# another host. npm installs into web/node_modules only (never globally).
ASSETS := node/static/vendor/.installed
# Test files run on this many workers (pytest-xdist); 1 runs them in order in one process.
TEST_WORKERS ?= 3

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

$(DEVOP): tools/dev-op/package.json tools/dev-op/package-lock.json
	cd tools/dev-op && npm ci --no-audit --no-fund --loglevel=error

$(ASSETS): web/package.json web/package-lock.json web/vendor_assets.py
	cd web && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	$(PYTHON) web/vendor_assets.py
	touch $(ASSETS)

assets: $(ASSETS)

install: $(STAMP) $(ASSETS) $(DEVOP)

demo: $(STAMP) $(ASSETS) $(DEVOP)
	$(BIN)/python examples/demo.py

test: $(STAMP) $(ASSETS) $(DEVOP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25

# wrk (Debian) drives the peer-ratio, core-scaling and load benchmarks; installed when missing.
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } \
	  || echo "make bench: wrk (Debian package wrk) is missing: the wrk-driven figures report an error" >&2
	$(BIN)/python -m bench.run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis bench/out demo-data web/node_modules \
		node/static/vendor tests/out tools/dev-op/node_modules
