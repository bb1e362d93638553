# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint format pytest bench mutation docker-smoke clean

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

# Asyncio debug mode: a service callback that holds the event loop over 100 ms fails its test
# (see tests/conftest.py).
pytest: $(STAMP)
	PYTHONASYNCIODEBUG=1 $(PY) -m pytest

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests bench
	$(VENV)/bin/ruff format src tests bench

bench: $(STAMP)
	$(PY) bench/hashing.py
	$(PY) bench/listing.py
	$(PY) bench/legacy_import.py

# Mutation testing of the modules that hold the promises ([tool.mutmut] in pyproject.toml):
# slow on 2 cores, so not part of `make test`. Survivors are listed at the end; see
# docs/mutation.md for the last score and what each survivor means.
mutation: $(STAMP)
	$(VENV)/bin/mutmut run --max-children 2 || true
	$(VENV)/bin/mutmut export-cicd-stats
	cat mutants/mutmut-cicd-stats.json
	$(VENV)/bin/mutmut results

docker-smoke:
	.ci/docker-smoke

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache mutants
