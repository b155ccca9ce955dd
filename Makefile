# Two entry points on a fresh machine: `make demo` and `make test`. Both create .venv once.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit functional e2e crash-sweep clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/migrate demo

lint: $(STAMP)
	$(BIN)/ruff check migrate tests bench
	$(BIN)/ruff format --check migrate tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# Three workers, a test file per worker (module fixtures are set up once); TEST_WORKERS=0 runs
# the suite in one process (easier to read a failure).
TEST_WORKERS ?= 3
# --durations: the slowest tests are named at the end, to keep the suite under ten minutes.
PYTEST := $(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15

test: lint
	$(PYTEST)

unit: $(STAMP)
	$(PYTEST) tests/unit

functional: $(STAMP)
	$(PYTEST) tests/functional

e2e: $(STAMP)
	$(PYTEST) tests/e2e

# Every kill point of the baseline, before and after each mutating call (hours; the suite samples
# one). MIGRATE_CRASH_POINTS=N samples N instead; MIGRATE_CRASH_SEED=S replays a sample.
crash-sweep: $(STAMP)
	MIGRATE_CRASH_POINTS=$${MIGRATE_CRASH_POINTS:-all} $(BIN)/pytest -q -s tests/e2e/test_crash_sweep.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
