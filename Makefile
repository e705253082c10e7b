# Everything a developer or CI needs; see README.md.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
export UV_PYTHON ?= python3

.PHONY: install serve demo test test-fast lint bench bench-load system-deps clean standin serve-standin helm-values

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet 'uv>=0.5,<1'

install: $(UV)
	$(UV) sync --frozen --quiet

# STILTS (taplint, tapquery) and Java come from Debian; tests drive the service with them.
system-deps:
	@command -v stilts >/dev/null 2>&1 || { \
	  echo "Installing Debian's stilts (taplint) ..."; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq stilts >/dev/null; }
	@# Debian's Chromium: the web page's browser tests drive it with Playwright (no browser download).
	@test -x /usr/bin/chromium || { \
	  echo "Installing Debian's chromium (browser tests of the web page) ..."; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }
	@# The Compose client validates docker-compose.yml (tests/deploy; no Docker engine needed).
	@{ command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1; } || { \
	  echo "Installing Debian's docker-compose (client-side check of docker-compose.yml) ..."; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq docker-compose >/dev/null; }

# Builds the demo catalog once (TAP_DATA_DIR, default ./data), then serves it.  DataLink
# descriptors come from Rubin's sdm_schemas directory beside the checkout unless
# TAP_DATALINK__TEMPLATES_DIR names another (production sets it explicitly; see docs/datalink.md).
# (Without that directory the service runs without DataLink descriptors.)
DATALINK_DIR := $(abspath ../shared/rubin-sdm/datalink)
ifneq ($(wildcard $(DATALINK_DIR)/datalink-manifest.json),)
serve: export TAP_DATALINK__TEMPLATES_DIR ?= $(DATALINK_DIR)
endif
serve: install
	$(VENV)/bin/tap-service demo --if-missing
	$(VENV)/bin/tap-service serve

# The Qserv stand-in in the local MariaDB (start it with
# `start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd`):
# scisql stand-in functions, the demo catalog, and a TAP_SCHEMA database.
STANDIN_URL ?= mysql+pymysql://root@127.0.0.1:3306/dp02_dc2_catalogs
STANDIN_TAP_SCHEMA_URL ?= mysql+pymysql://root@127.0.0.1:3306/tap_schema
STANDIN_ENV = TAP_QSERV__URL=$${TAP_QSERV_URL:-$(STANDIN_URL)} \
	TAP_QSERV__TAP_SCHEMA_URL=$${TAP_QSERV_TAP_SCHEMA_URL:-$(STANDIN_TAP_SCHEMA_URL)} \
	TAP_QSERV__STANDIN_CPOLY_VERTICES=20

standin: install
	$(STANDIN_ENV) $(VENV)/bin/tap-service standin

# Serves the stand-in through the Qserv backend (run `make standin` first).
serve-standin: install
	$(STANDIN_ENV) TAP_BACKEND=qserv $(VENV)/bin/tap-service serve

demo: install
	$(VENV)/bin/tap-service demo

lint: install
	$(VENV)/bin/ruff check tap_service tests benchmarks tools
	$(VENV)/bin/ruff format --check tap_service tests benchmarks tools
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: install system-deps lint
	$(VENV)/bin/pytest

# Skips the slow scale tests (CI still runs them through `make test`).
test-fast: install
	$(VENV)/bin/pytest -m "not slow"

bench: install
	$(PY) benchmarks/bench_adql.py
	$(PY) benchmarks/bench_sync.py
	$(PY) benchmarks/bench_writers.py
	$(PY) benchmarks/bench_sync_stream.py
	$(PY) benchmarks/bench_async.py
	$(PY) benchmarks/bench_upload.py
	$(PY) benchmarks/bench_qserv.py
	$(PY) benchmarks/bench_lightcurve.py

# Ten minutes of mixed load from 50 clients (issue 11); not part of `make bench` or CI.
bench-load: install
	$(PY) benchmarks/bench_load.py

# Regenerates the config block of the Helm values from tap_service/config.py.
helm-values: install
	$(PY) tools/helm_values.py

clean:
	rm -rf .venv .tools data test-artifacts .pytest_cache .mypy_cache .ruff_cache
