# The two commands a new user needs: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help run serve test unit lint format bench mutate clean

help:
	@echo "make run    - the function on the emulators and the Svix twin, shown on sample events"
	@echo "make serve  - the same stack, kept up for manual publishing (Ctrl-C stops it)"
	@echo "make test   - lint, then unit, integration and end-to-end tests on the real emulators"
	@echo "make unit   - the fast tests only (no emulators)"
	@echo "make bench  - throughput, latency, round trips and cold start, into BENCHMARKS.md"
	@echo "make mutate - mutation check of the delivery core (mutmut; minutes, not in CI)"

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .  # the `notifier` command
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m devstack.run_local

serve: $(STAMP)
	$(BIN)/python -m devstack.run_local --serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	$(BIN)/python -m benchmarks.run

mutate: $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-mutate.txt
	$(BIN)/python -m devstack.mutate

clean:
	rm -rf $(VENV) .run .pytest_cache .ruff_cache .hypothesis mutants
