# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# The lock files (exact versions and sha256 hashes, for every platform and Python >= 3.11):
#   requirements/dev.txt      runtime + test + dev tools + build backend: what `make` installs
#   requirements/runtime.txt  the service alone: what the container installs
#   requirements/build.txt    the build backend alone: what builds the wheel in the container
# `make lock` rewrites them from pyproject.toml, keeping every pin that still fits;
# `make lock-upgrade` moves everything to the newest allowed versions.
LOCKS      := requirements/dev.txt requirements/runtime.txt requirements/build.txt
UV_VERSION := 0.13.9
UV         := $(VENV)/bin/uv
COMPILE     = $(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes \
              --custom-compile-command 'make lock' $(LOCK_ARGS)
BUILD_REQUIRES := $(PYTHON) -c "import tomllib; \
  print(*tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires'], sep='\n')"

.PHONY: run test lint format pytest docs lock lock-upgrade bench mutation docker-smoke clean

# The venv holds exactly what requirements/dev.txt says (rebuilt from scratch when it changes),
# then the project itself, editable, without resolving anything. `pip check` fails when
# pyproject.toml asks for something the lock lacks: run `make lock`.
$(STAMP): pyproject.toml requirements/dev.txt
	if [ -f $(VENV)/pyvenv.cfg ]; then rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
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
	.ci/browser
	PYTHONASYNCIODEBUG=1 $(PY) -m pytest

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests bench
	$(VENV)/bin/ruff format src tests bench

# docs/api.md is rendered from the OpenAPI document; a test fails when it is out of date.
docs: $(STAMP)
	$(PY) -m modelshelf.web.apidoc > docs/api.md

# The lock tool lives in the venv too (a venv is made if there is none, so a pyproject.toml that
# the current lock no longer satisfies can still be locked). dev.txt is resolved first; the
# other two are held to its versions, so the container runs what the tests ran.
lock:
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "uv==$(UV_VERSION)"
	mkdir -p requirements
	$(BUILD_REQUIRES) | $(COMPILE) pyproject.toml --extra dev - -o requirements/dev.txt
	$(COMPILE) pyproject.toml -c requirements/dev.txt -o requirements/runtime.txt
	$(BUILD_REQUIRES) | $(COMPILE) - -c requirements/dev.txt -o requirements/build.txt

lock-upgrade:
	$(MAKE) lock LOCK_ARGS=--upgrade

bench: $(STAMP)
	$(PY) bench/hashing.py
	$(PY) bench/listing.py
	$(PY) bench/legacy_import.py
	$(PY) bench/walk.py
	$(PY) bench/renditions.py

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
