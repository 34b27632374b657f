# Every target builds or refreshes its own virtualenv in .venv, so a fresh clone needs only python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean venv settings-table

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/marketbot replay --bars bot/data/demo/bars --news bot/data/demo/news.jsonl \
		--watch BABA,JD,TCEHY,PDD,BIDU,SPY --from 2025-03-03 --to 2025-03-07 $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check bot handlers config tests bench
	$(BIN)/ruff format --check bot handlers config tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

settings-table: $(STAMP)
	$(BIN)/python -m config.settings_doc

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
