# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test venv system-deps bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

system-deps:
	scripts/install-system-deps

demo: venv system-deps
	$(VENV)/bin/kafka-jmx demo

test: venv system-deps
	$(PY) -m pytest

bench: venv system-deps
	$(PY) benchmarks/simulation.py
	$(PY) benchmarks/jmx.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
