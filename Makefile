# The two commands a newcomer needs are `make demo` and `make test`; each sets itself up from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup demo-setup lint format test test-fast demo local-stack synth infra-check cfn-lint checkov \
	checkov-setup localstack-setup clean bench chaos chaos-report

# One .venv, filled in two steps with a stamp each (each ends with `pip install --no-deps -e .`, which puts the
# `gopro-s3-sync` command in .venv/bin): the demo set (requirements-demo.txt: the runtime and the moto
# server, what `make demo` and `make local-stack` need, under a minute to install) and the full set
# (requirements-dev.txt: the tests, the CDK and the template checks, which `make test` adds to the same .venv).
DEMO_STAMP := $(VENV)/.demo-stamp
STAMP := $(VENV)/.installed-stamp

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(DEMO_STAMP): requirements.txt requirements-demo.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-demo.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(DEMO_STAMP)

$(STAMP): requirements.txt requirements-demo.txt requirements-dev.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(DEMO_STAMP) $(STAMP)

setup: $(STAMP)
demo-setup: $(DEMO_STAMP)

# A .venv with the full set has the demo set too. `make demo DEMO_SETUP=` runs with the .venv as it is (the tmux
# test of tests/demo/ does, so as never to install into a shared .venv).
DEMO_SETUP = $(if $(wildcard $(STAMP)),$(STAMP),$(DEMO_STAMP))

# Infrastructure checks. checkov pins packages that clash with the dev tools, so it has its own virtualenv.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-stamp
CDK_OUT := cdk.out
TEMPLATES := $(CDK_OUT)/*/GoProSync-*.template.json

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

checkov-setup: $(CHECKOV_STAMP)

# LocalStack 4.9.2 (no Docker) for tests/emulators/, which start and stop it themselves; its own virtualenv too,
# since it pins packages that fight the dev tools' (see devtools/localstack.py).
LOCALSTACK_VENV := .venv-localstack
LOCALSTACK_STAMP := $(LOCALSTACK_VENV)/.installed-stamp

$(LOCALSTACK_STAMP): requirements-localstack.txt
	$(PYTHON) -m venv $(LOCALSTACK_VENV)
	$(LOCALSTACK_VENV)/bin/pip install --quiet --upgrade pip
	$(LOCALSTACK_VENV)/bin/pip install --quiet -r requirements-localstack.txt
	touch $(LOCALSTACK_STAMP)

localstack-setup: $(LOCALSTACK_STAMP)

# Offline synthesis of dev, staging and prod into cdk.out/<env>/ (needs Node, not the CDK CLI); cdk-nag runs
# inside it and fails it on any unacknowledged finding.
synth: setup
	$(BIN)/python -m infra_cdk.synth --outdir $(CDK_OUT)

# Template checks on what `make synth` wrote; `infra-check` runs all three in order.
infra-check: synth
	$(MAKE) --no-print-directory cfn-lint checkov

# W3005 is CDK's own redundant DependsOn on a function's role; everything else must be clean.
cfn-lint: setup
	$(BIN)/cfn-lint --ignore-checks W3005 -- $(TEMPLATES)

# --skip-download keeps checkov offline; its exceptions live in each resource's Metadata with their reasons.
checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f $(TEMPLATES)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The Lambda emulation kit of tests/packaging: the Runtime Interface Emulator (from the aws-sam-cli wheel),
# awslambdaric and requirements.txt for this machine's architecture, for the template's Python (3.12), built once
# into .cache/lambda-rie/ (pins: requirements-rie.txt).
.PHONY: rie-setup
rie-setup: setup
	$(BIN)/python -m devtools.lambda_rie setup

# The two programs from Debian's packages the tests drive as a person would: Chromium (the catalog page,
# tests/scripts/test_catalog_browser.py) and tmux (the demo's screen, tests/demo/). Installed when missing (root).
.PHONY: system-packages
system-packages:
	@command -v chromium >/dev/null 2>&1 && command -v tmux >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq chromium tmux >/dev/null)

# Two pytest workers (pytest-xdist): most of the suite waits on sockets, emulators and timeouts rather than the
# CPU, so two workers on two cores roughly halve the wall time (each worker starts its own emulators).
test: lint infra-check rie-setup localstack-setup system-packages
	$(BIN)/python -m pytest -n 2

# DEMO_ARGS=-v shows the functions' logs instead of writing them to a file (see --help for the rest).
demo: $(DEMO_SETUP)
	$(BIN)/python -m devtools.local_runtime $(DEMO_ARGS)

# A local stack that stays up for the scripts (moto server + GoPro simulator on fixed ports; Ctrl-C stops it).
local-stack: $(DEMO_SETUP)
	$(BIN)/python -m devtools.local_stack $(LOCAL_STACK_ARGS)

# Issue 6's chaos suite: `make test` runs its quick set; these add the long randomised set (SEED=n reseeds it,
# CHAOS_RUNS=n sets how many random nights). `chaos-report` also rewrites docs/reliability.md from the outcomes.
SEED ?= 1
CHAOS_RUNS ?= 30
chaos: setup
	$(BIN)/python -m pytest tests/chaos --chaos-long --chaos-seed=$(SEED) --chaos-runs=$(CHAOS_RUNS)

chaos-report: setup
	$(BIN)/python -m pytest tests/chaos --chaos-long --chaos-seed=$(SEED) --chaos-runs=$(CHAOS_RUNS) \
		--chaos-report=docs/reliability.md

# Issue 7's benchmarks (engine vs rclone copyurl vs boto3, listing costs, end to end) -> bench/results/*.json and
# the tables of docs/performance.md; about 35 minutes, never part of `make test`. rclone comes from Debian's
# packages when missing (root). BENCH_ARGS=--with-4gib adds the 4 GiB transfers (about 25 minutes more).
bench: setup
	@command -v rclone >/dev/null 2>&1 || (apt-get update && apt-get install -y rclone)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(LOCALSTACK_VENV) .pytest_cache .ruff_cache .hypothesis cdk.out .cache
