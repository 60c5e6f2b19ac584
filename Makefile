# Two commands on a fresh clone: `make demo` (the main job) and `make test` (the whole suite).
# Each creates .venv and installs the exact versions in requirements.lock (hashes checked);
# only Python 3.11+ is assumed. `make lock` refreshes the lock, `make test-latest` is the canary.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
# The lock covers Linux and macOS, Python 3.11-3.13, the run-time and `dev` dependencies.
LOCK_ARGS := --extra dev --universal --python-version 3.11 --generate-hashes

.PHONY: demo test test-fast test-latest install versions lint lock clean browser

$(BIN)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $@

install: $(BIN)/.installed

versions: $(BIN)/.installed
	@$(BIN)/python -c "import sys; print('python', sys.version.split()[0])"
	@$(BIN)/python -m pip list --format=freeze 2>/dev/null | grep -i -E \
	  '^(mlx|mlx-cpu|mlx-vlm|transformers|numpy|opencv-python|pyzmq|pydantic|pillow|pytest|ruff)=='

demo: $(BIN)/.installed
	$(BIN)/pnp-vision demo

lint: $(BIN)/.installed
	$(BIN)/ruff check pnp_vision tests bench

test: lint browser
	$(BIN)/pytest

# The console tests drive a real Chromium: Debian's package, never a downloaded browser.
# PNP_VISION_CHROMIUM=/path/to/chrome points them at another one (macOS).
browser:
	@if [ -z "$$PNP_VISION_CHROMIUM" ] && ! command -v chromium >/dev/null; then \
	  if command -v apt-get >/dev/null; then \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; \
	  else echo "no chromium: install it or set PNP_VISION_CHROMIUM" >&2; exit 1; fi; fi

# Everything but the tests marked slow: the inner loop (under a minute on 2 cores).
test-fast: lint browser
	$(BIN)/pytest -m "not slow" -q

lock: $(BIN)/.installed
	$(BIN)/uv pip compile pyproject.toml $(LOCK_ARGS) --upgrade --no-header -o $(LOCK)

# The canary for the next drift (not in CI): a throwaway venv with the newest version of every
# dependency that pyproject.toml allows, the whole suite, and the versions that differ from the lock.
test-latest: $(BIN)/.installed
	$(BIN)/python -m pnp_vision.devtools.latest --lock $(LOCK)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
