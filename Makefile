# The commands a person types. Everything runs from the project's own virtualenv, .venv/.
PYTHON   ?= python3
VENV     := .venv
PY       := $(VENV)/bin/python
SERVICES := customer visit orders reporting
# Services are installed once their pyproject exists.
SERVICE_PROJECTS := $(wildcard $(foreach s,$(SERVICES),services/$(s)/pyproject.toml))
PYPROJECTS := shared/pyproject.toml $(SERVICE_PROJECTS)

.DEFAULT_GOAL := help
.PHONY: help venv run test bench bench-quick demo lint clean

help:
	@echo "make venv         create .venv and install the platform, the services and test tools"
	@echo "make run          start PostgreSQL, NATS and the four services under .run/"
	@echo "make test         run the test suite (starts its own servers on free ports)"
	@echo "make bench        run the benchmarks (they start their own servers)"
	@echo "make bench-quick  a short benchmark run"
	@echo "make demo         load a simulated month of a sales department into a running 'make run'"
	@echo "make lint         ruff (lint and format)"
	@echo "make clean        delete .run/ (databases, streams, logs, secrets)"

venv: $(VENV)/.installed

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; this is " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(PY) $(PYPROJECTS) requirements-dev.txt
	$(PY) -m pip install --quiet -e shared $(foreach p,$(SERVICE_PROJECTS),-e $(dir $(p))) -r requirements-dev.txt
	@touch $@

run: venv
	$(PY) -m salesplatform.devstack run

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

bench: venv
	@[ ! -f bench/requirements.txt ] || $(PY) -m pip install --quiet -r bench/requirements.txt
	$(PY) -m bench

bench-quick: venv
	@[ ! -f bench/requirements.txt ] || $(PY) -m pip install --quiet -r bench/requirements.txt
	$(PY) -m bench --quick

demo: venv
	$(PY) -m bench.demo

lint: venv
	$(PY) -m ruff check shared services tests bench
	$(PY) -m ruff format --check shared services tests bench

clean:
	rm -rf .run
