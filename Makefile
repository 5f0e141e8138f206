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

# The venv is made without pip where the system pip can install into it
# (pip >= 22.3, --python): that saves the ~6 s of ensurepip. PIP is then the
# system pip pointed at the venv, else the venv's own (upgraded once).
$(VENV)/bin/python:
	if $(PYTHON) -c 'import sys, pip; sys.exit(tuple(map(int, pip.__version__.split(".")[:2])) < (22, 3))' 2>/dev/null; \
	then $(PYTHON) -m venv --without-pip $(VENV); \
	else $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install --quiet --upgrade pip; fi

PIP = $(shell $(BIN)/python -m pip --version >/dev/null 2>&1 \
	&& echo "$(BIN)/python -m pip" || echo "$(PYTHON) -m pip --python $(BIN)/python")

$(STAMP): pyproject.toml $(VENV)/bin/python
	$(PIP) install --quiet -e ".[test]"
	touch $(STAMP) $(DEMO_STAMP)

# The demo runs from the source tree (python -m sk_adam), so it installs the
# runtime dependencies and the plot extra as pyproject.toml lists them, and
# builds nothing (an editable build costs ~6 s); where tomllib is missing
# (Python 3.10) it installs the package with its plot extra instead.
DEMO_REQUIREMENTS = import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	print(" ".join(p["dependencies"] + p["optional-dependencies"]["plot"]))

$(DEMO_STAMP): pyproject.toml $(VENV)/bin/python
	if requirements=$$($(PYTHON) -c '$(DEMO_REQUIREMENTS)' 2>/dev/null); \
	then $(PIP) install --quiet --no-compile $$requirements; \
	else $(PIP) install --quiet --no-compile -e ".[plot]"; fi
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python -m sk_adam demo

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
