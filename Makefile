# tradelake — the two commands a newcomer needs:  make demo   and   make test
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
export SPARK_LOCAL_IP := 127.0.0.1

.PHONY: setup demo test test-unit test-integration lint dist stack-up stack-down clean help

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

setup: $(VENV)/.installed  ## install everything: Debian packages, .venv, JVM services (idempotent)
	@$(PY) -m tradelake.stack.setup_jvm
	@echo "setup: done"

$(VENV)/.installed: pyproject.toml
	@bash tradelake/stack/setup_system.sh
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@echo "setup: installing the project and its pinned dependencies into $(VENV) (first time ~2 min)"
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $@

demo: setup  ## the end-to-end demo: market -> Kafka -> lake -> batch -> training -> live routing over FIX -> warehouse -> report
	@$(VENV)/bin/tradelake demo

test: setup  ## the whole suite: unit, integration (real local stack), e2e
	@bash -c 'set -o pipefail; $(VENV)/bin/pytest -p no:cacheprovider'

test-unit: setup  ## unit tests only (no services)
	@$(VENV)/bin/pytest -m unit

dist: setup  ## dist/tradelake-<version>-py.zip for spark-submit --py-files (YARN; see the README)
	@$(PY) -m tradelake.dist

lint: setup  ## ruff
	@$(VENV)/bin/ruff check .

stack-up: setup  ## start the local stack
	@$(VENV)/bin/tradelake stack up

stack-down:  ## stop the local stack (keeps data)
	@$(VENV)/bin/tradelake stack down

clean:  ## stop the stack and delete var/ state (keeps fetched jars and .venv)
	-@$(VENV)/bin/tradelake stack down --purge
