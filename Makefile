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

demo: setup  ## stack up; 5 days of ticks -> Kafka -> lake -> batch layer -> SQL; a 6th day -> speed layer -> ODS; merged bars; a backtest
	@$(VENV)/bin/tradelake stack up
	@$(VENV)/bin/tradelake hive apply
	@$(VENV)/bin/tradelake ods migrate
	@$(VENV)/bin/tradelake ingest --source simulator --days 5 --start-date 2026-01-05
	@$(VENV)/bin/tradelake land --idle-exit 5
	@$(VENV)/bin/tradelake batch --from 2026-01-05 --to 2026-01-09
	@for q in hive/queries/*.sql; do echo; echo "== $$q"; $(VENV)/bin/tradelake sql --file $$q || exit 1; done
	@echo; echo "== a day the batch layer has not seen, through the speed layer into the ODS"
	@$(VENV)/bin/tradelake ingest --source simulator --days 1 --start-date 2026-01-12
	@$(VENV)/bin/tradelake speed --available-now
	@$(VENV)/bin/tradelake ods status
	@echo; echo "== AAPL 5m bars across the batch watermark (batch view, then real-time view)"
	@$(VENV)/bin/tradelake bars AAPL --from 2026-01-09T20:40 --to 2026-01-12T14:50 --interval 5m
	@echo; echo "== a backtest over the batch bars"
	@$(VENV)/bin/tradelake backtest --strategy selector --from 2026-01-05 --to 2026-01-09
	@echo; echo "The stack is still running. Query it: .venv/bin/tradelake sql \"SELECT * FROM curated.daily_vwap LIMIT 10\"   Stop it: .venv/bin/tradelake stack down"

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
