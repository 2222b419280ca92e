"""Fixtures of the operator-tool tests: real boto3 clients against the embedded stack."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tools.lab.letters import Queues, cli_env
from tools.lab.harness import ROOT, modfleet
from worker.aws import boto3_client


@pytest.fixture()
def sqs(stack):
    return boto3_client("sqs", stack.region, stack.endpoint_url)


@pytest.fixture()
def s3(stack):
    return boto3_client("s3", stack.region, stack.endpoint_url)


@pytest.fixture()
def queues(sqs) -> Queues:
    return Queues(sqs)


@pytest.fixture()
def run_cli(stack):
    """Run `modfleet ARGS...` as a subprocess against the stack; returns CompletedProcess."""
    def run(*args: str, timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess:
        return subprocess.run(modfleet(*args), env=cli_env(stack), cwd=ROOT, text=True,
                              capture_output=True, timeout=timeout, **kwargs)
    return run
