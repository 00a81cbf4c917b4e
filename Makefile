# Two commands set everything up on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install install-bench run test lint format typecheck schema schema-check pytest bench bench-foundation bench-search bench-history clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	@touch $(BENCH_STAMP)

install-bench: $(BENCH_STAMP)

## Serve on http://127.0.0.1:8000 (embedded PostgreSQL in .crm/ unless CRM_DATABASE_URL is set).
run: install
	$(BIN)/crm serve

## Lint, type-check, check generated schemas, run the test suite.
test: install lint typecheck schema-check pytest

lint: install
	$(BIN)/ruff check app tests migrations bench
	$(BIN)/ruff format --check app tests migrations bench

format: install
	$(BIN)/ruff check --fix app tests migrations bench
	$(BIN)/ruff format app tests migrations bench

typecheck: install
	$(BIN)/mypy

## Regenerate openapi/openapi.json and openapi/schema.graphql from the code.
schema: install
	$(BIN)/crm export-schema --out openapi

## Fail when openapi/ differs from what the code generates.
schema-check: install
	@tmp=$$(mktemp -d) && $(BIN)/crm export-schema --out $$tmp >/dev/null && \
	if ! diff -u openapi/openapi.json $$tmp/openapi.json >/dev/null || \
	   ! diff -u openapi/schema.graphql $$tmp/schema.graphql >/dev/null; then \
	  echo "openapi/ is out of date: run 'make schema' and commit the result"; \
	  diff -u openapi/schema.graphql $$tmp/schema.graphql | head -40; rm -rf $$tmp; exit 1; \
	fi; rm -rf $$tmp; echo "openapi/ is up to date"

pytest: install
	$(BIN)/pytest -q

## Every workload (call centre, POS, partner sync, mobile app, GraphQL page, micro-reads) on
## seeded data next to same-run baselines; SCALE=small|medium|large. Writes bench/results/.
SCALE ?= medium
bench: install-bench
	$(BIN)/python -m bench.workloads --scale $(SCALE)

## Cold start and GET /v1/workspace against bare FastAPI and raw asyncpg.
bench-foundation: install
	$(BIN)/python -m bench.foundation

## Search on a seeded workspace (CONTACTS=1000000 for the full-size run; takes minutes).
CONTACTS ?= 100000
bench-search: install
	$(BIN)/python -m bench.search --contacts $(CONTACTS)

## Batch interaction ingest, and timeline / 360 latency of one contact with 10,000 entries.
bench-history: install
	$(BIN)/python -m bench.history

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
