# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-fast check venv system-deps realkafka zabbix70 prometheus3 bench clean

# sslpsk3 (TLS-PSK to Zabbix before Python 3.13) builds against OpenSSL: system-deps comes first
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[lab,test]'
	touch $@

venv: $(VENV)/.installed

system-deps:
	scripts/install-system-deps
	scripts/install-zabbix-proxy

# real Apache Kafka (both tested lines), jmx_exporter and the Jolokia agent, from Maven Central
realkafka: system-deps
	scripts/install-realkafka

# Zabbix 7.0 LTS: Debian 13's packages in a Debian 13 root (kept in /var/cache/kafka-jmx, made once)
zabbix70:
	scripts/install-zabbix70

# Prometheus 3 and Alertmanager, built from their Go modules (kept in /var/cache/kafka-jmx, built once)
prometheus3:
	scripts/install-prometheus3 >/dev/null

demo: system-deps venv
	$(VENV)/bin/kafka-jmx demo

# two workers: the suite mostly waits on real services and wall clocks (tests/conftest.py groups the
# modules so each service stack starts once per worker)
test: system-deps venv realkafka zabbix70 prometheus3
	$(PY) -m pytest -n 2 --dist loadgroup

# the inner loop (under a minute): no real services, nothing slow; make test runs everything
test-fast: venv
	$(PY) -m pytest -q -m "not services and not slow"

# the gate CI passes first: lint, types, generated files in step with the catalog, the fast tests
check: system-deps venv prometheus3
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/kafka-jmx generate --check
	$(MAKE) test-fast

bench: system-deps venv
	$(PY) benchmarks/simulation.py
	$(PY) benchmarks/jmx.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
