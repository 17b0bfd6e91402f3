# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= demo_out

.PHONY: demo demo-live test install validate bench clean

$(PY):
	@test -n "$(PYTHON)" || { echo "need Python 3.11 or newer on PATH (or make PYTHON=/path/to/python)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "$(PYTHON) is older than 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/twin demo --out $(OUT)
	@echo "open $(OUT)/report.html"

# the live demo: a replayed L-Town leak through the MQTT bridge and the shadow twin into the
# operator dashboard (needs Mosquitto on 127.0.0.1:1883 and ../shared/data/battledim)
demo-live: $(STAMP)
	$(VENV)/bin/twin dashboard --demo --port $(or $(PORT),8050)

test: $(STAMP)
	$(PY) -m pytest -q

validate: $(STAMP)
	$(PY) -m pytest -q tests/validation

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	set -e; for bench in benchmarks/*.py; do $(PY) $$bench; done

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
