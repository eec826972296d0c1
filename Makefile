# Everything a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED := ../shared
# -W: setuptools tells of every editable install ("Editable installation. Please be careful with
# folders ..."), which pip shows even with --quiet; warnings that ask for a change still show.
PIP_INSTALL := $(BIN)/python -W "ignore:Editable installation" -m pip install --quiet

.PHONY: install demo test lint bench clean conformance

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(PIP_INSTALL) -e '.[test]'
	touch $(STAMP)

demo: install
	$(BIN)/varpulis-mp simulate -p examples/pipeline_three_stages.vpl -e examples/pipeline_three_stages.evt --immediate --verbose
	@echo
	@echo "varpulis-mp is installed in $(VENV); to run it as README.md shows, first: . $(VENV)/bin/activate"

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check varpulis_mp tests bench
	$(BIN)/mypy --strict varpulis_mp
	$(BIN)/lint-imports

conformance: install
	$(PYTHON) $(SHARED)/conformance/check.py $(SHARED)/conformance -- $(BIN)/varpulis-mp

bench: install
	$(PIP_INSTALL) -e '.[bench]'
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis bench/data bench/results
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
