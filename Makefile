# Everything a fresh Debian machine with Python 3.11 needs, in its own virtualenv.
#   make serve   install, generate the demo deployment if missing, and show it
#   make test    install with the test extras and run every test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= demo
DEMO_HOURS ?= 2

.PHONY: install install-test serve demo test bench lint format clean

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

# Until the dashboard lands (step 3), "serve" shows what the store holds.
serve: demo
	$(VENV)/bin/spectral-atlas info $(DEMO_DIR)/demo.zarr

test: install-test
	$(PY) -m pytest

bench: install-test
	$(PY) benchmarks/ingest.py --hours 1

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-test
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
