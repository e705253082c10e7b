# Everything a developer or CI needs; see README.md.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install serve test lint bench

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet 'uv>=0.5'

install: $(UV)
	$(UV) sync --frozen

lint: install
	$(VENV)/bin/ruff check tap_service tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: install
	$(VENV)/bin/pytest
