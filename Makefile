# One entry point for humans and CI. `make demo` and `make test` set everything up on first use.
# The newest Python the project supports that runs here (a pyenv shim can be on PATH without its version installed
# or selected, so each is tried, not just looked up); `make PYTHON=python3.12 ...` picks one.
ifndef PYTHON
PYTHON := $(or $(firstword $(foreach p,python3.13 python3.12 python3.11,$(shell $(p) -c "" >/dev/null 2>&1 && echo $(p)))),python3.11)
endif
VENV := .venv
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: setup chromium node demo test test-fast test-aws lint bench validate build deploy clean

setup: $(VENV)/.installed $(SAM_VENV)/.installed

$(VENV)/.installed: pyproject.toml functions/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]' -r functions/requirements.txt
	touch $@

# SAM CLI pins its own boto3, so it lives in its own environment.
$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==1.170.0
	touch $@

# checkov (tests/checks/test_checkov.py) pins its own boto3 too: its own environment, from pyproject's dependency
# group `checkov` (pip 25.1 or later reads dependency groups).
CHECKOV_VENV := .venv-checkov
$(CHECKOV_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet --group checkov
	touch $@

# Debian's chromium, for the report's headless-browser test (tests/functional/test_report.py). Installed once;
# apt-get update only when the package lists do not know chromium or are too old to fetch it. Without apt-get
# or root/sudo it says so and goes on: that test then skips, naming why.
CHROMIUM := /usr/bin/chromium
chromium: $(CHROMIUM)

$(CHROMIUM):
	@if ! command -v apt-get >/dev/null; then echo "make: no apt-get here: install chromium yourself" >&2; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; \
	else echo "make: installing chromium needs root or sudo" >&2; exit 0; fi; \
	install="$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium"; \
	if apt-cache show chromium >/dev/null 2>&1 && $$install; then exit 0; fi; \
	$$sudo apt-get update -q && $$install

# The Node tools the checks run (package.json: asl-validator, tests/checks/test_asl_validator.py), exactly as
# package-lock.json pins them. Without npm it says so and goes on: that test then skips, naming why.
NODE_STAMP := node_modules/.installed
node: $(NODE_STAMP)

$(NODE_STAMP): package.json package-lock.json
	@if ! command -v npm >/dev/null; then echo "make: no npm here: install Node.js for the asl-validator check" >&2; \
	exit 0; fi; \
	npm ci --no-audit --no-fund && touch $@

## The main job: bring the stack up on the embedded engine, show it, and run a real campaign through it.
demo: setup
	$(VENV)/bin/sesflow local up
	$(VENV)/bin/sesflow demo

## Every test: unit, functional, engine, workflow, the static checks (lint, drift, IAM, sam build) and the
## end-to-end tier against `sesflow local up --serve` (tests/e2e; `make test-aws` runs it against a deployed stack).
test: setup chromium $(CHECKOV_VENV)/.installed $(NODE_STAMP)
	$(VENV)/bin/pytest

test-fast: $(VENV)/.installed
	$(VENV)/bin/pytest -m "not slow and not sam"

## The end-to-end tests (tests/e2e, marker aws) against a deployed stack: make test-aws STACK=NAME, with your AWS
## credentials and region (AWS_PROFILE, AWS_DEFAULT_REGION), or AWS_ENDPOINT_URL for an endpoint such as a running
## `sesflow local up --serve` (STACK=sesflow-local). `make test` runs the same tests on the engine served locally.
## The region this Makefile defaults to is dropped here, so a profile's region counts.
test-aws: $(VENV)/.installed
	@test -n "$(STACK)" || { echo "make test-aws: which stack? make test-aws STACK=NAME" >&2; exit 2; }
	$(if $(filter file,$(origin AWS_DEFAULT_REGION)),env -u AWS_DEFAULT_REGION) SESFLOW_E2E_STACK=$(STACK) \
		$(VENV)/bin/pytest -m aws tests/e2e

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src functions tests benchmarks
	$(VENV)/bin/cfn-lint template.yaml

bench: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/engine.py

validate: $(SAM_VENV)/.installed
	$(SAM) validate --lint

build: $(SAM_VENV)/.installed
	$(SAM) build

deploy: build
	$(SAM) deploy --guided

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) node_modules .aws-sam .pytest_cache .ruff_cache
