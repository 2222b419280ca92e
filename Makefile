# Set-up on a fresh machine is part of each target: `make demo` and `make test` need nothing else.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU torch from this machine's disk; an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	# boto3 beside aiobotocore in one resolve, so pip picks the botocore that aiobotocore pins.
	$(PY) -m pip install -q -e '.[test,local]' boto3 aiobotocore
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/modfleet demo

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
