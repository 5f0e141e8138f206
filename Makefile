# Two entry points, both self-installing from a fresh clone:
#   make demo   fit AdamRegressor and LinearRegression on the diabetes data
#   make test   lint (ruff; import-linter: the layers of sk_adam), then run
#               the test suite (it builds the docs too)
#   make docs   build the documentation site, warnings as errors
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the demo needs numpy, scipy, scikit-learn and matplotlib only: its own
# stamp installs just those (the test stack is a superset of them)
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test lint docs clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --no-compile -e ".[plot]"
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/sk-adam demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache docs/_build docs/auto_examples
