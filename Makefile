# chaoslab: `make test` and `make game-day` set up everything they need on a fresh Debian machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test lint game-day install prometheus bench clean

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

lint: $(STAMP)
	$(VENV)/bin/ruff check chaoslab tests benchmarks
	$(VENV)/bin/mypy chaoslab
	$(VENV)/bin/lint-imports

test: $(STAMP) prometheus lint
	$(PY) -m pytest -q

# Sandbox up, the sample game day, sandbox down (always). The exit code is chaoslab run's:
# the sample game day is meant to find the payment weakness, so it exits 1.
game-day: $(STAMP) prometheus
	@$(VENV)/bin/chaoslab validate experiments/gameday.yaml
	@$(VENV)/bin/chaoslab sandbox up $(if $(SANDBOX),--config $(SANDBOX))
	@$(VENV)/bin/chaoslab run experiments/gameday.yaml --target sandbox --yes; rc=$$?; \
	  $(VENV)/bin/chaoslab sandbox down; \
	  echo "make game-day: chaoslab run exited $$rc (0 held, 1 a weakness was found, 3 infrastructure, 4 cleanup)"; \
	  exit $$rc

bench: $(STAMP) prometheus
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit $$?; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
