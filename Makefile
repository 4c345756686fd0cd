# One entry point for humans and CI. `make demo` and `make test` set everything up on first use.
PYTHON ?= python3.11
VENV := .venv
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: setup demo test test-fast lint bench validate build deploy clean

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

## The main job: bring the stack up on the embedded engine, show it, and run a real campaign through it.
demo: setup
	$(VENV)/bin/sesflow local up
	$(VENV)/bin/sesflow demo

## Every test: unit, functional, engine, workflow and the static checks (lint, drift, IAM, sam build).
test: setup
	$(VENV)/bin/pytest

test-fast: $(VENV)/.installed
	$(VENV)/bin/pytest -m "not slow and not sam"

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
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .ruff_cache
