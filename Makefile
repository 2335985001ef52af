# Everything a fresh Debian machine with Python 3.11 needs, in its own virtualenv.
#   make serve   install, generate the demo deployment if missing, and serve the explorer on it
#   make test    install with the test extras and run every test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= demo
DEMO_HOURS ?= 2
PORT ?= 5006
ADDRESS ?= 127.0.0.1

.PHONY: install install-test serve demo browser test bench lint format clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

$(DEMO_DIR)/demo.zarr: | $(VENV)/.installed
	$(VENV)/bin/spectral-atlas demo $(DEMO_DIR) --hours $(DEMO_HOURS)

demo: $(DEMO_DIR)/demo.zarr

serve: demo
	$(VENV)/bin/spectral-atlas info $(DEMO_DIR)/demo.zarr
	$(VENV)/bin/spectral-atlas serve $(DEMO_DIR)/demo.zarr --port $(PORT) --address $(ADDRESS)

# The browser tests drive Debian's Chromium (never a downloaded one): install it as root
# when missing; otherwise they fail and say what to install.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "browser tests need Debian's chromium: sudo apt-get install -y chromium"; fi; }

test: install-test browser
	$(PY) -m pytest

bench: install-test
	$(PY) benchmarks/ingest.py --hours 1
	$(PY) benchmarks/query.py

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-test
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
