# The two commands of the README:  make quickstart   and   make test
VENV ?= .venv
PY := $(VENV)/bin/python
# scripts/setup.sh touches this stamp when it finishes; the targets below run setup only when the stamp is missing or
# older than what setup installs from (so `make demo` starts at once the second time). `make setup` always runs it.
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
SETUP_INPUTS := pyproject.toml requirements-nodeps.txt scripts/setup.sh

.PHONY: setup setup-test quickstart test demo bench lmms-eval-venv

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test
	touch $(TEST_STAMP)

$(STAMP): $(SETUP_INPUTS)
	bash scripts/setup.sh

$(TEST_STAMP): $(SETUP_INPUTS)
	bash scripts/setup.sh --test
	touch $(TEST_STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/facetrack quickstart

test: $(TEST_STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) space/app.py

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

# lmms-eval in its own venv (lmms_eval_tasks/fec_bench/README.md): what tests/test_lmms_eval_task.py runs end to end.
lmms-eval-venv:
	bash lmms_eval_tasks/setup_lmms_eval_venv.sh
