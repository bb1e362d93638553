# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint format pytest bench docker-smoke clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m modelshelf serve

test: lint pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

pytest: $(STAMP)
	.ci/browser
	$(PY) -m pytest

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests bench
	$(VENV)/bin/ruff format src tests bench

bench: $(STAMP)
	$(PY) bench/hashing.py
	$(PY) bench/listing.py
	$(PY) bench/legacy_import.py
	$(PY) bench/walk.py

docker-smoke:
	.ci/docker-smoke

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
