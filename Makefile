# Kefu — two set-up commands: `make demo` and `make test`. Each installs whatever is missing first.
SHELL := /bin/bash
KEFU := .venv/bin/kefu
PY := .venv/bin/python

.PHONY: setup scale model store index intents segments demo test lint lock bench clean

setup:            ## create .venv from the pinned lock (idempotent)
	@bash scripts/setup.sh

scale: setup      ## the optional extra `scale` (requirements/scale.txt: pyspark); the tests need it, the demo does not
	@bash scripts/setup-scale.sh

model: setup      ## convert the packaged SmolLM2 GGUF into a HF folder (idempotent)
	@$(KEFU) llm prepare

store: setup      ## build the demo store from dunnhumby's Complete Journey (skipped when present)
	@$(KEFU) store build --if-missing

index: store      ## embed the catalogue into Chroma + BM25 (only changed products on later runs)
	@$(KEFU) index

intents: setup    ## fine-tune the fast intent classifier (skipped when trained on the current data)
	@$(PY) -c "from assistant.understanding.intents import ensure_trained; from kefu.settings import Settings; ensure_trained(Settings())"

segments: store   ## fit customer segments, personas, CLV and propensity, and the recommender (skipped when fitted)
	@$(KEFU) segment fit --no-transformer --if-stale
	@$(KEFU) recommend fit --if-stale

demo:             ## install, start vLLM, build store/index/classifier/segments while it loads, then the pages (timed)
	@bash scripts/demo.sh

test: model scale ## the layer contract (lint-imports), then the whole test suite, real components included
	@bash scripts/chromium.sh
	@bash scripts/postgres.sh
	@bash scripts/redis.sh
	@.venv/bin/lint-imports --no-logo
	@$(PY) -m pytest -q -rs

lint: setup       ## ruff, then the layer contract ([tool.importlinter] in pyproject.toml)
	@$(PY) -m ruff check . && $(PY) -m ruff format --check . && .venv/bin/lint-imports --no-logo

lock:             ## re-resolve requirements/base.in into requirements/lock.txt (needs a fresh venv)
	@bash scripts/lock.sh

bench: model store
	@$(PY) bench/llm_throughput.py

clean:
	rm -rf .venv .kefu
