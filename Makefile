# The two commands of the quick start: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo dev test lint unit clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Chimera needs Python 3.11+") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

demo: install  ## run the example campaign on embedded defaults (no accounts, no network)
	$(BIN)/chimera demo

dev: install  ## Temporal dev server + workers of every role, until Ctrl-C
	$(BIN)/chimera dev

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

test: lint  ## every test: unit, workflow (time-skipping), replay, integration, end to end
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit -q

clean:
	rm -rf $(VENV) .chimera .mypy_cache .ruff_cache .pytest_cache
