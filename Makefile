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
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,encoders]'
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

## bench: the methods on the full datasets; tables on screen, JSON/CSV in results/bench.
## English sets: every method. NSMC: the baselines (the packaged encoder is English-only,
## and encoding 712k reviews at ~90/s on 2 cores would take hours).
bench: export COLUMNS = 200
bench: $(STAMP)
	$(BIN)/topicsent eval --dataset mams-acsa,mams-atsa,semeval14-acsa,semeval14-atsa,womens-clothing --methods all --out results/bench
	$(BIN)/topicsent eval --dataset nsmc,nsmc-binary --methods majority,tfidf-lr --out results/bench

clean:
	rm -rf $(VENV) demo-output results .pytest_cache
