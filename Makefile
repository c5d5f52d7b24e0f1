# Everything runs from .venv, built from this repo's own files.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
DEV_STAMP := $(VENV)/.dev-installed
RUN_STAMP := $(VENV)/.run-installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: run chat test lint bench install clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(RUN_STAMP)

$(BENCH_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev,bench]'
	touch $@ $(DEV_STAMP) $(RUN_STAMP)

install: $(RUN_STAMP)

# Seeds samples/ into the database only when it is empty, then starts the bot
# (Telegram when BOT_TOKEN is set, the console chat otherwise).
run: $(RUN_STAMP)
	$(VENV)/bin/newsbot seed --if-empty samples
	$(VENV)/bin/newsbot run

chat: $(RUN_STAMP)
	$(VENV)/bin/newsbot seed --if-empty samples
	$(VENV)/bin/newsbot chat

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest

bench: $(BENCH_STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
