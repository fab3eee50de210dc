# The two commands of the README:  make quickstart   and   make test
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup setup-test quickstart test demo bench

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

quickstart: setup
	$(VENV)/bin/facetrack quickstart

test: setup-test
	$(PY) -m pytest -q

demo: setup
	$(PY) space/app.py

bench: setup
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done
