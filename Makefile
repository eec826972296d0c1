# Everything a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED := ../shared
# -W: setuptools tells of every editable install ("Editable installation. Please be careful with
# folders ..."), which pip shows even with --quiet; warnings that ask for a change still show.
PIP_INSTALL := $(BIN)/python -W "ignore:Editable installation" -m pip install --quiet

.PHONY: install demo test faults soak lint bench clean conformance brokers systemd-analyze

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

# The whole suite, the fault-injection scenarios (tests/faults) in their short versions included; the
# tests that measure time (marker `serial`) run alone afterwards, so that no other test loads the CPU.
test: install brokers systemd-analyze
	$(BIN)/python -m pytest -q -n 2 -m "not serial"
	$(BIN)/python -m pytest -q -m serial

# The fault-injection scenarios in their full length (kills every 2 s for 30 s, 20 SIGTERMs, a
# 10 s broker outage); without VARPULIS_MP_FAULTS_FULL they take a few seconds each.
faults: install brokers
	VARPULIS_MP_FAULTS_FULL=1 $(BIN)/python -m pytest -q -s -m faults tests/faults

# A long run under steady load, sampling every worker's memory and open files (SOAK_MINUTES=30).
soak: install
	$(BIN)/python bench/soak.py

# $(call need,COMMAND,PACKAGE,WHAT FOR): when COMMAND is missing, install PACKAGE with apt-get if
# allowed (root), else stop and say what to install.
define need
	@PATH="$$PATH:/usr/sbin:/usr/local/sbin"; command -v $(1) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $(2) ($(3))"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	  else \
	    echo "make test needs $(1) $(3): install it (apt-get install $(2))" >&2; \
	    exit 1; \
	  fi; }
endef

# The connector tests run a real MQTT broker (mosquitto; nats-server comes with the test extras).
brokers:
	$(call need,mosquitto,mosquitto,for the MQTT connector tests)

# The unit file's test checks examples/systemd/varpulis-mp@.service with systemd-analyze (package
# systemd; no running systemd needed).
systemd-analyze:
	$(call need,systemd-analyze,systemd,for the systemd unit's test)

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
