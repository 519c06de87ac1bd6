# Set-up and entry points. `make test` is the README's test command and what .ci/run calls.
#
# Every step is idempotent: system packages are installed only when missing, the
# virtual environment is reinstalled only when pyproject.toml changes, and the
# reference stack is built once, so a second `make test` goes straight to pytest.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
# What is installed: the project with its test extra (make test, lint, bench), or the project alone (make demo).
STAMP := $(VENV)/.install-stamp
DEMO_STAMP := $(VENV)/.install-stamp-demo
# The port `make demo` serves on (`make demo PORT=8080`).
PORT ?= 8000
# Per-test limit: the slowest tests (fine-tuning, reference-stack subprocesses) take a few minutes on 2 cores.
PYTEST_TIMEOUT ?= 900
PYTEST_ARGS ?=

export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: test lint demo bench system-deps venv refstack clean

## test: install what is missing, lint and type-check, and run every test
test: system-deps venv lint refstack
	$(VENV)/bin/pytest -p no:cacheprovider --timeout=$(PYTEST_TIMEOUT) $(PYTEST_ARGS)

## lint: ruff and mypy (pinned in the test extra, configured in pyproject.toml); any finding fails the run
lint: venv
	$(VENV)/bin/ruff check registry adapters plugins
	$(VENV)/bin/mypy

## demo: publish and load the bundled example models on the embedded default catalog, then serve it on PORT
## (default 8000; Ctrl-C stops). Installs the project alone, not the test extra.
demo: $(DEMO_STAMP)
	$(VENV)/bin/model-registry demo --serve --port $(PORT)

## bench: run every benchmark in bench/
bench: venv
	@shopt -s nullglob; scripts=(bench/bench_*.py); \
	if (( $${#scripts[@]} == 0 )); then echo "no bench/bench_*.py to run" >&2; exit 1; fi; \
	for script in "$${scripts[@]}"; do echo "== $$script"; $(VENV)/bin/python "$$script"; done

system-deps:
	scripts/install-system-packages.sh

venv: $(STAMP)

# A venv made when the project depended on tensorflow-cpu has it over tensorflow's files: one TensorFlow only.
define one_tensorflow
	if $(VENV)/bin/pip show --quiet tensorflow-cpu 2>/dev/null; then \
		$(VENV)/bin/pip uninstall --yes tensorflow-cpu; \
		$(VENV)/bin/pip install -c constraints.txt --force-reinstall --no-deps tensorflow; \
	fi
endef

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -c constraints.txt -e '.[test]'
	$(one_tensorflow)
	touch $@ $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -c constraints.txt -e .
	$(one_tensorflow)
	touch $@

## refstack: the other stacks the tests run beside the project: the reference (TF 2.15 + tensorflow_hub 0.15)
## the unmodified tensorflow_hub 0.16.1 client (TF 2.21 + tf-keras) and the unmodified kagglehub 1.0.3 (+ kagglesdk
## 0.1.38), each in its own venv; axe-core (npm pack) for the browser tests
refstack: venv
	$(VENV)/bin/python -c 'from tests.refstack import ensure_refstack; print("reference stack:", ensure_refstack())'
	$(VENV)/bin/python -c 'from tests.refstack import ensure_hub_client; print("hub client stack:", ensure_hub_client())'
	$(VENV)/bin/python -c 'from tests.refstack import ensure_kagglehub; print("kagglehub stack:", ensure_kagglehub())'
	$(VENV)/bin/python -c 'from tests.refstack import ensure_axe_core; print("axe-core:", ensure_axe_core())'

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
