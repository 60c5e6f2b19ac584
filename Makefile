# Two commands on a fresh clone: `make demo` (the main job) and `make test` (the whole suite).
# Each creates .venv and installs what it needs; only Python 3.11+ is assumed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/pnp-vision demo

test: $(BIN)/.installed
	$(BIN)/ruff check pnp_vision tests bench
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
