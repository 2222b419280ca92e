# Set-up on a fresh machine is part of each target: `make demo` and `make test` need nothing else.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# checkov pins boto3/botocore below what aiobotocore needs, so it lives in a venv of its own.
CHECKOV_VERSION := 3.3.30
INFRA_VENV ?= .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed-checkov-$(CHECKOV_VERSION)
# Where `terraform init` finds the hashicorp/aws provider offline (infra/offline.tfrc): a mirror
# directory holding registry.terraform.io/; this machine image's by default.
MODFLEET_TF_PLUGIN_DIR ?= /opt/tf-plugins
export MODFLEET_TF_PLUGIN_DIR

# The Neuron SDK 2.25 environment's transformers (setup.cfg's neuron extra): the model tests run
# under it too.  Same CPU torch from disk; transformers 4.47.1 from PyPI; no Neuron packages.
NEURON_TRANSFORMERS := $(shell sed -n 's/^ *transformers==\([0-9.]*\)$$/\1/p' setup.cfg)
TNX_VENV ?= .venv-tnx
TNX_STAMP := $(TNX_VENV)/.installed-transformers-$(NEURON_TRANSFORMERS)

.PHONY: demo test install clean infra-check systemd-analyze test-neuron-env wheelhouse \
	dlami-resolve

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU torch from this machine's disk; an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	# boto3 beside aiobotocore in one resolve, so pip picks the botocore that aiobotocore pins.
	$(PY) -m pip install -q -e '.[test,local]' boto3 aiobotocore
	touch $(STAMP)

$(INFRA_STAMP):
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install -q --upgrade pip
	$(INFRA_VENV)/bin/python -m pip install -q checkov==$(CHECKOV_VERSION)
	touch $(INFRA_STAMP)

# tests/infra scores the worker's systemd unit with systemd-analyze (Debian's systemd package).
systemd-analyze:
	@command -v systemd-analyze >/dev/null || { \
	  echo "installing Debian's systemd package (systemd-analyze, for tests/infra)"; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd; } || { \
	  echo "cannot install systemd: run as root, or install Debian's systemd package"; exit 1; }

$(TNX_STAMP): setup.cfg
	$(PYTHON) -m venv $(TNX_VENV)
	$(TNX_VENV)/bin/python -m pip install -q --upgrade pip
	$(TNX_VENV)/bin/python -m pip install -q torch==2.13.0
	$(TNX_VENV)/bin/python -m pip install -q -e '.[test]' 'transformers==$(NEURON_TRANSFORMERS)'
	touch $(TNX_STAMP)

install: $(STAMP) $(INFRA_STAMP) $(TNX_STAMP) systemd-analyze

# The real sample clips beside the project, when present, join the generated ones.
DEMO_ARGS ?= $(wildcard ../shared/media/*.mp4 ../shared/media/*.mkv)

demo: $(STAMP)
	$(VENV)/bin/modfleet demo $(DEMO_ARGS)

# The suite on two workers, whole files each (module fixtures stay in one process): most e2e,
# Terraform and moto time is spent waiting on subprocesses and servers, so it took 12 min against
# 19 min in one process on this 2-core machine (485 tests, 2026-12-05).
test: $(STAMP) $(INFRA_STAMP) systemd-analyze test-neuron-env dlami-resolve
	$(PY) -m pytest -q -n 2 --dist loadfile

# Model tests only, under the transformers the Neuron SDK pins (Qwen2-VL ones skip: 5.x only), and
# `modfleet compile`'s refusals (tests/tools/test_compile_command.py, moved out of tests/model).
test-neuron-env: $(TNX_STAMP)
	$(TNX_VENV)/bin/python -m pytest -q tests/model tests/tools/test_compile_command.py

# Does modfleet install beside the Neuron SDK 2.25 DLAMI environment (infra/constraints/)? pip's
# resolver, offline, in about a second; with a built wheelhouse, over its real wheels.
DLAMI_CONSTRAINT ?= infra/constraints/dlami-2.25-neuron-venv.txt

dlami-resolve: $(STAMP)
	$(PY) -m tools.lab.dlami_resolve --constraint $(DLAMI_CONSTRAINT) \
	  $(if $(wildcard $(WHEELHOUSE)/modfleet-*.whl),--wheelhouse $(WHEELHOUSE))

infra-check: $(STAMP) $(INFRA_STAMP) systemd-analyze
	$(PY) -m pytest -q tests/infra

# What an Inf2 instance installs modfleet from, with no package index (infra/README.md): modfleet's
# wheel and its own requirements' wheels for the DLAMI's Python 3.10; torch, transformers and the
# Neuron SDK are the DLAMI's. DLAMI_PACKAGES: that environment's `pip list --format=freeze`, to
# download versions that install beside it. Upload with the `aws s3 sync` line it prints.
WHEELHOUSE ?= dist/wheelhouse
DLAMI_PACKAGES ?=

wheelhouse: $(STAMP)
	$(PY) -m tools.ops.wheelhouse --out $(WHEELHOUSE) $(if $(DLAMI_PACKAGES),--constraint $(DLAMI_PACKAGES))

clean:
	rm -rf $(VENV) $(INFRA_VENV) $(TNX_VENV) build *.egg-info
