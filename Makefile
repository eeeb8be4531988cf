# The commands a person types. Everything runs from the project's own virtualenv, .venv/.
PYTHON   ?= python3
VENV     := .venv
PY       := $(VENV)/bin/python
SERVICES := customer visit orders reporting console
# Services are installed once their pyproject exists.
SERVICE_PROJECTS := $(wildcard $(foreach s,$(SERVICES),services/$(s)/pyproject.toml))
PYPROJECTS := shared/pyproject.toml $(SERVICE_PROJECTS)

.DEFAULT_GOAL := help
.PHONY: help venv run servers test test-fast chaos bench bench-quick demo lint lock clean

help:
	@echo "make venv         create .venv and install the platform, the services and test tools"
	@echo "make run          start PostgreSQL, NATS and the four services under .run/"
	@echo "make servers      start only PostgreSQL and NATS under .run/ (a restore goes into them)"
	@echo "make test         run the test suite (starts its own servers on free ports)"
	@echo "make test-fast    only the tests that need no server (pytest -m fast), in seconds"
	@echo "make chaos        the fault suite: kills and restarts under load, then reconciles every command"
	@echo "make bench        run the benchmarks (they start their own servers)"
	@echo "make bench-quick  a short benchmark run"
	@echo "make demo         load a simulated month of a sales department into a running 'make run'"
	@echo "make lint         ruff (lint and format) and mypy (types)"
	@echo "make lock         recompile requirements/*.lock after a dependency changed (LOCK_ARGS=--upgrade)"
	@echo "make clean        delete .run/ (databases, streams, logs, secrets)"

venv: $(VENV)/.installed

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; this is " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)

# Every third-party package comes from the lock, checked against its hashes; the project's own
# packages are then installed from the tree without resolving anything (--no-deps), built by
# the setuptools of the lock (--no-build-isolation).
$(VENV)/.installed: $(PY) $(PYPROJECTS) requirements/dev.lock
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e shared $(foreach p,$(SERVICE_PROJECTS),-e $(dir $(p)))
	@touch $@

# The images install requirements/runtime.lock; make venv and CI requirements/dev.lock, which
# is compiled within the runtime lock's versions.
LOCK_PACKAGES := salesplatform $(foreach s,$(SERVICES),sales-$(s))
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" $(foreach p,$(LOCK_PACKAGES),--no-emit-package $(p)) $(LOCK_ARGS)

lock: venv
	$(UV_COMPILE) requirements/runtime.in -o requirements/runtime.lock
	$(UV_COMPILE) requirements/dev.in -o requirements/dev.lock

run: venv
	$(PY) -m salesplatform.devstack run

servers: venv
	$(PY) -m salesplatform.devstack servers

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

# Only the files that mark tests fast are collected: the others are not even imported.
FAST_TEST_FILES = $(shell grep -rl --include='test_*.py' 'pytest.mark.fast' shared/tests services/*/tests tests)

test-fast: venv
	$(PY) -m pytest -m fast $(FAST_TEST_FILES) $(PYTEST_ARGS)

chaos: venv
	$(PY) -m salesplatform.devstack chaos $(CHAOS_ARGS)

bench: venv
	@[ ! -f bench/requirements.txt ] || $(PY) -m pip install --quiet -r bench/requirements.txt
	$(PY) -m bench

bench-quick: venv
	@[ ! -f bench/requirements.txt ] || $(PY) -m pip install --quiet -r bench/requirements.txt
	$(PY) -m bench --quick

demo: venv
	$(PY) -m bench.demo

lint: venv
	$(PY) -m ruff check shared services tests bench examples
	$(PY) -m ruff format --check shared services tests bench examples
	$(PY) -m mypy

clean:
	rm -rf .run
