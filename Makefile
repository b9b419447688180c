# The two commands of the quick start: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install inspector chain demo dev test lint unit clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Chimera needs Python 3.11+") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# The official MCP Inspector (pinned in tools/inspector), whose CLI the tests run against every server.
inspector: tools/inspector/node_modules/.installed

tools/inspector/node_modules/.installed: tools/inspector/package-lock.json
	npm ci --prefix tools/inspector --no-audit --no-fund --loglevel=error
	touch $@

# Foundry's anvil (pinned in tools/chain): the local EVM node of the sandbox wallet chain (specs/chain.md).
chain: tools/chain/node_modules/.installed

tools/chain/node_modules/.installed: tools/chain/package-lock.json
	npm ci --prefix tools/chain --no-audit --no-fund --loglevel=error
	touch $@

demo: install chain  ## run the example campaign on embedded defaults (no accounts, no network)
	$(BIN)/chimera demo

dev: install  ## Temporal dev server + workers of every role, until Ctrl-C
	$(BIN)/chimera dev

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

test: lint inspector chain  ## every test: unit, workflow (time-skipping), replay, integration, end to end
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit -q

clean:
	rm -rf $(VENV) .chimera .mypy_cache .ruff_cache .pytest_cache tools/inspector/node_modules tools/chain/node_modules
