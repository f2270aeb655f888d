# Two commands on a fresh machine:  `make repro` (the pipeline)  and  `make test` (the tests).
# Both create .venv/ (idempotent: re-installs only when pyproject.toml changes).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: venv repro test bench clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

repro: $(STAMP)
	dvc repro

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/bench_synth.py --profile cpu --json
	$(PY) benchmarks/bench_synth.py --profile paper --json
	$(PY) benchmarks/bench_train.py --profile cpu --json
	$(PY) benchmarks/bench_train.py --profile paper --json

clean-venv:
	rm -rf $(VENV)
