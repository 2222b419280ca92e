"""Fixtures of the operator-tool tests: real boto3 clients against the embedded stack."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

from tests.tools.support import ROOT, Queues, cli_command, cli_env
from worker.aws import boto3_client


@pytest.fixture(scope="session", autouse=True)
def moto_sqs_without_quadratic_time():
    """Make moto's SQS O(1) per message where it is O(queue length), keeping its behaviour.

    moto 5 re-counts every message of a queue for each message it receives or sends (a retention
    check builds all queue attributes; reading a clock through naive datetimes), so scanning 1,000
    dead letters took minutes on two cores.  Same semantics, computed directly; the server runs in
    this process, so the CLI subprocesses talking to it benefit too.
    """
    import moto.sqs.models as models

    saved = (models.SQSBackend.is_message_valid_based_on_retention_period,
             models.unix_time, models.unix_time_millis)
    slow_time, slow_millis = saved[1], saved[2]

    def within_retention(backend, queue_name, message):
        retention_s = int(backend.get_queue(queue_name).message_retention_period)
        return retention_s + message.sent_timestamp / 1000 > time.time()

    models.SQSBackend.is_message_valid_based_on_retention_period = within_retention
    models.unix_time = lambda dt=None: time.time() if dt is None else slow_time(dt)
    models.unix_time_millis = lambda dt=None: (time.time() * 1000.0 if dt is None
                                               else slow_millis(dt))
    yield
    (models.SQSBackend.is_message_valid_based_on_retention_period,
     models.unix_time, models.unix_time_millis) = saved


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
        return subprocess.run(cli_command(*args), env=cli_env(stack), cwd=ROOT, text=True,
                              capture_output=True, timeout=timeout, **kwargs)
    return run
