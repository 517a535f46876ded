# FLTS developer entrypoints. `make run` and `make test` are the two commands in the README.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.flts-installed

.PHONY: setup run test lint typecheck unit bench bench-quick chaos schemas clean stack-down

setup: $(STAMP)

# Reinstall only when the dependency lists change; constraints.txt is the tested lock.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all]"
	@touch $(STAMP)

run: setup
	$(BIN)/flts run $(ARGS)

lint: setup
	$(BIN)/ruff check --no-cache src tests bench
	$(BIN)/ruff format --no-cache --check src tests bench
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

# pytest exits 5 when it collected nothing: that is a broken suite, not a pass.
test: setup lint typecheck
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing on purpose" >&2; exit 1; fi; \
	exit $$rc

unit: setup
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

schemas: setup
	$(BIN)/flts schema export

bench: setup
	$(BIN)/flts bench all

bench-quick: setup
	$(BIN)/flts bench all --quick

# Every fault scenario against real local stacks (~15 min); writes bench/results/chaos.json and
# rebuilds bench/RESULTS.md. The fast scenarios also run in `make test`.
chaos: setup
	$(BIN)/flts chaos

stack-down:
	-$(BIN)/flts stack down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info src/*.egg-info
