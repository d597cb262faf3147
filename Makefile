# Every target creates the virtualenv it needs (.venv) on first use.
# Installs are constrained by constraints.txt (torch pinned to the local CPU wheel).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow lint format bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## demo: analyse bundled real reviews (English aspects, Korean ratings) and print the summary
demo: $(STAMP)
	$(BIN)/topicsent demo

## test: lint, then the default test suite (fast; slow model-training tests excluded)
test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -n 2 --durations=10

## test-slow: the slow tests only (full-size training runs)
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow --durations=10

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: $(STAMP)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

## bench: every method on every dataset, full size; tables on screen, JSON/CSV in results/bench
bench: $(STAMP)
	$(BIN)/topicsent eval --dataset all --methods all --out results/bench

clean:
	rm -rf $(VENV) demo-output results .pytest_cache
