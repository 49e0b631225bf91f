PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# dg wants the project's venv active; this is what activating it does.
DG := VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dg

export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: demo test lint bench ui clean system-packages

# uv resolves the same pins as pip (the same versions) and installs them in seconds rather than
# minutes: with pip, setting up took a fifth of make test's time on a fresh clone.
# It also compiles their bytecode once: where PYTHONDONTWRITEBYTECODE is set (as on this project's
# machines) every process would otherwise compile Dagster, pandas and great-expectations from
# source, 11 s of the 16 s a test's subprocess took to import the definitions and run a check.
UV_VERSION := 0.13.9
UV := $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python

$(STAMP): pyproject.toml telemetry_client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(UV) -e ./telemetry_client -e '.[dev]'
	touch $(STAMP)

# The Spark engine (TELEMETRY_ENGINE=spark) is an optional extra: the tests run it, the demo does
# not need its 490 MB.
SPARK_STAMP := $(VENV)/.spark-installed
$(SPARK_STAMP): $(STAMP)
	$(UV) -e '.[spark]'
	touch $(SPARK_STAMP)

# The instance settings (run queue, concurrency pool, run monitoring) are committed in deploy/.
$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster.yaml $@

demo: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/telemetry demo

# The Debian packages the tests drive (deploy/system-packages.txt); installs only what is missing.
system-packages:
	@bash deploy/install-system-packages.sh

# The tests' files (lakes, warehouses, Dagster instances and their SQLite event logs) go to
# tmpfs when /dev/shm has 8 GB free: on this project's 2-core machines that took a sixth off
# the longest modules. One folder per checkout, since pytest empties it when it starts.
CHECKOUT_ID := $(shell printf %s "$(CURDIR)" | cksum | cut -d' ' -f1)
PYTEST_BASETEMP := $(shell df --output=avail -k /dev/shm 2>/dev/null \
	| awk 'NR == 2 && $$1 > 8388608 {print "/dev/shm/telemetry-pytest-$(CHECKOUT_ID)"}')

# Most tests wait on servers and subprocesses, so a pytest worker per core keeps every core busy;
# a file's tests stay on one worker, so its module-scoped servers start once.
test: $(STAMP) $(SPARK_STAMP) system-packages
	$(BIN)/ruff check .
	$(DG) check defs
	$(BIN)/pytest -n auto --dist loadfile --no-loadscope-reorder $(if $(PYTEST_BASETEMP),--basetemp=$(PYTEST_BASETEMP))

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP) $(SPARK_STAMP) system-packages $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m benchmarks

ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(DG) dev

clean:
	rm -rf $(VENV) data/landing data/lake data/warehouse.duckdb data/dashboard $(DAGSTER_HOME)
