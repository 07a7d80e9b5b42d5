# The two commands of the README: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test lint bench clean venv venv-test stream-proto

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# `make run` needs the base only: the embedded default (SQLite, embedded bus).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# `make test` needs every engine's extra: the suite runs against each database and bus.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,all]'
	touch $(VENV)/.installed $@

venv: $(VENV)/.installed
venv-test: $(VENV)/.installed-test

## run: set up and start the whole platform on its embedded defaults, with demo data
run: venv
	$(BIN)/strato up

## test: set up and run the whole test suite
test: venv-test
	bash scripts/test-deps.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## lint: ruff and mypy --strict (the same checks as .pre-commit-config.yaml)
lint: venv-test
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

## bench: every side-by-side benchmark in bench/
bench: venv-test
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

## stream-proto: regenerate strato.stream's gRPC modules from their .proto files
stream-proto: venv-test
	bash scripts/gen-stream-proto.sh
