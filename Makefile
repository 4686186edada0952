# chaoslab: `make test` and `make game-day` set up everything they need on a fresh Debian machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test lint game-day install prometheus chromium bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

install: $(STAMP)

# Real Prometheus for the tests and the sandbox (Debian packages; root only).
prometheus:
	@if ! command -v prometheus >/dev/null 2>&1 || ! command -v prometheus-alertmanager >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing prometheus and prometheus-alertmanager (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-alertmanager >/dev/null; \
	  else \
	    echo "prometheus is missing: run 'sudo apt-get install -y prometheus prometheus-alertmanager'" >&2; \
	  fi; \
	fi

# A real browser for the report test (tests/integration/test_report_browser.py; skipped without it).
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is missing (the browser test is skipped): run 'sudo apt-get install -y chromium'" >&2; \
	  fi; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check chaoslab tests benchmarks examples
	$(VENV)/bin/mypy chaoslab
	$(VENV)/bin/lint-imports

test: $(STAMP) prometheus chromium lint
	$(PY) -m pytest -q

# Sandbox up, the sample game day, sandbox down (always: also when `up` or the run fails,
# and on Ctrl-C or SIGTERM, which chaoslab turns into removing the active fault and exit 3;
# the trap keeps the shell alive to bring the sandbox down). The recipe exits with chaoslab
# run's code (3 when the sandbox did not come up) and prints it last: the sample game day is
# meant to find the payment weakness, so it is 1; with SANDBOX=experiments/sandbox-fixed.yaml every
# step holds (0). GNU make itself exits 2 whenever a recipe fails, whatever its code: read
# the last line, or run the three commands below directly, to tell 1 from 3 or 4.
# Each invocation uses a fresh state directory of its own, so neither a sandbox you started
# yourself nor another game day running on the same machine is touched. It is removed
# afterwards, unless the run ended in an infrastructure error (its logs are there). A
# directory given on the command line, `make game-day CHAOSLAB_SANDBOX_DIR=DIR`, is used
# instead and kept.
GAME_DAY_DIR = $(if $(filter command line,$(origin CHAOSLAB_SANDBOX_DIR)),$(CHAOSLAB_SANDBOX_DIR),$$(mktemp -d /tmp/chaoslab-game-day-XXXXXX))
game-day: $(STAMP) prometheus
	@$(VENV)/bin/chaoslab validate experiments/gameday.yaml
	@CHAOSLAB_SANDBOX_DIR="$(GAME_DAY_DIR)" && export CHAOSLAB_SANDBOX_DIR && \
	  trap 'echo "make game-day: signal received; the sandbox comes down next" >&2' INT TERM; \
	  if $(VENV)/bin/chaoslab sandbox up $(if $(SANDBOX),--config $(SANDBOX)); then \
	    $(VENV)/bin/chaoslab run experiments/gameday.yaml --target sandbox --yes; rc=$$?; \
	  else rc=3; fi; \
	  $(VENV)/bin/chaoslab sandbox down \
	    $(if $(filter command line,$(origin CHAOSLAB_SANDBOX_DIR)),,&& { [ $$rc = 3 ] || rm -rf "$$CHAOSLAB_SANDBOX_DIR"; }); \
	  echo "make game-day: chaoslab run exited $$rc (0 held, 1 a weakness was found, 3 infrastructure, 4 cleanup)"; \
	  exit $$rc

# Every script in benchmarks/ that runs as a program (helper modules are skipped); all
# of them run even when one fails, and the target fails if any did.
bench: $(STAMP) prometheus
	@failed=""; for b in $$(grep -l '^if __name__ == "__main__":' benchmarks/*.py); do \
	  echo "== $$b"; $(PY) $$b || failed="$$failed $$b"; \
	done; \
	if [ -n "$$failed" ]; then echo "failed:$$failed" >&2; exit 1; fi

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
