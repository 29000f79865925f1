# Two commands for a fresh machine: `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint bench golden soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,demo]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/meshxds demo examples/universal-demo $(ARGS)

test: $(STAMP) lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Everything but the tests that start real processes (Envoy, PostgreSQL, servers, CLIs): a quick loop while editing.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not real" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Rewrite the expected files of the golden tests from the current output; review `git diff` before committing.
golden: $(STAMP)
	$(BIN)/python -m pytest tests -m golden --update-golden -q

bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

# Reliability fault probes against a real `meshxds serve` (minutes; not part of `make test`): prints a table.
soak: $(STAMP)
	$(BIN)/python -m bench.soak $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
