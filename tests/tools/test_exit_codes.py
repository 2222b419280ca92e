"""One exit-code table for every command (README "Exit codes"): each command run as a subprocess
with a bad region, an unknown profile, an unreachable endpoint or a missing queue exits by the
table with one line on stderr naming the cause, and no traceback; SIGTERM exits 143, SIGINT 130."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

import pytest

from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from tools.lab.harness import ROOT, modfleet
from tools.ops.cli import exit_code_for
from tools.ops.exceptions import AwsCallFailed, ExitCode, InvalidRequest, Terminated
from worker.exceptions import AwsSettingRejected, AwsUnavailable, ReplicaDied

pytestmark = pytest.mark.slow  # each case starts the CLI as a subprocess
# Each command that reaches AWS (or the embedded stack, in a region), with the arguments it needs
# to get as far as its settings.
COMMANDS = {
    "worker": ["worker"],
    "submit": ["submit", "clip.mp4"],
    "enqueue": ["enqueue", "--key", "k"],
    "replay-dlq": ["replay-dlq"],
    "status": ["status"],
    "local-stack": ["local-stack"],
    "demo": ["demo"],
}
BAD_SETTINGS = {
    "malformed region": ({"AWS_REGION": "not_a_region"},
                         "AWS_REGION 'not_a_region' is not a region"),
    "unknown region": ({"AWS_DEFAULT_REGION": "us-esat-1"}, "did you mean us-east-1?"),
    "unknown profile": ({"AWS_PROFILE": "nope"}, "AWS_PROFILE nope: no such profile"),
}


def clean_env(tmp_path, **extra: str) -> dict[str, str]:
    """No modfleet or AWS settings from the caller's shell, and an AWS config of our own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODFLEET_", "AWS_"))}
    config = tmp_path / "aws-config"
    config.write_text("[profile ops]\nregion = eu-west-1\n")
    return env | {"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(config),
                  **extra}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(modfleet(*args), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def assert_one_line(result: subprocess.CompletedProcess, command: str, code: int, *phrases: str):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith(f"modfleet {command}: ")
    for phrase in phrases:
        assert phrase in lines[0]


@pytest.mark.parametrize("case", BAD_SETTINGS)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_refuses_a_bad_region_or_profile_with_exit_2(command, case, tmp_path):
    variables, phrase = BAD_SETTINGS[case]
    assert_one_line(run(COMMANDS[command], clean_env(tmp_path, **variables)), command, 2, phrase)


@pytest.mark.parametrize("command", ["worker", "submit", "enqueue"])
def test_flags_name_themselves(command, tmp_path):
    result = run([*COMMANDS[command], "--region", "not_a_region"], clean_env(tmp_path))
    assert_one_line(result, command, 2, "--region 'not_a_region' is not a region name")
    result = run([*COMMANDS[command], "--profile", "nope"], clean_env(tmp_path))
    assert_one_line(result, command, 2, "--profile nope: no such profile", "ops")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("command, args", [
    ("worker", ["--queue-url", "jobs", "--topic-arn", "arn:aws:sns:us-east-1:1:t"]),
    ("submit", ["--bucket", "b"]),
    ("enqueue", ["--queue-url", "jobs", "--bucket", "b"]),
])
def test_an_unreachable_endpoint_exits_3(command, args, tmp_path):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not read: the upload fails first")
    command_args = [str(clip) if a == "clip.mp4" else a for a in COMMANDS[command]]
    result = run([*command_args, *args, "--endpoint-url", endpoint], clean_env(tmp_path))
    assert_one_line(result, command, 3, endpoint, "us-east-1")


@pytest.mark.parametrize("command, args", [
    ("worker", ["--topic-arn", "arn:aws:sns:eu-west-2:123456789012:t"]),
    ("enqueue", ["--bucket", "b"]),
])
def test_a_missing_queue_exits_2_naming_the_region(command, args, embedded_aws, tmp_path):
    result = run([*COMMANDS[command], *args, "--queue", "no-such-queue", "--region", "eu-west-2",
                  "--endpoint-url", embedded_aws.endpoint_url], clean_env(tmp_path))
    assert_one_line(result, command, 2, "--queue-url no-such-queue: queue not found in eu-west-2")


def test_without_a_queue_or_a_stack_the_command_says_both(embedded_aws, tmp_path):
    result = run(["enqueue", "--key", "k", "--bucket", "b", "--region", "ap-south-1",
                  "--endpoint-url", embedded_aws.endpoint_url], clean_env(tmp_path))
    assert_one_line(result, "enqueue", 2, "--queue-url (or MODFLEET_QUEUE_URL)",
                    "no stack in ap-south-1")


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signals_exit_143_and_130_without_a_traceback(sig, code, tmp_path):
    """A command waiting on an endpoint that accepts and never answers, then signalled."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
        process = subprocess.Popen(
            modfleet("enqueue", "--key", "k", "--bucket", "b", "--endpoint-url", endpoint,
                     "--queue-url", f"{endpoint}/123456789012/jobs"),
            cwd=ROOT, env=clean_env(tmp_path), stderr=subprocess.PIPE, text=True)
        try:
            connection, _ = server.accept()  # the command is now inside its AWS call
            with connection:
                process.send_signal(sig)
                assert process.wait(timeout=30) == code
        finally:
            if process.poll() is None:
                process.kill()
        stderr = process.stderr.read()
        assert "Traceback" not in stderr, stderr


def test_exit_codes_by_what_escaped():
    refused = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessage")
    throttled = ClientError({"Error": {"Code": "Throttling", "Message": "slow"}}, "SendMessage")
    wrapped = AwsCallFailed("SendMessage failed")
    wrapped.__cause__ = refused
    assert exit_code_for(InvalidRequest("x")) == exit_code_for(AwsSettingRejected("x")) == 2
    assert exit_code_for(NoCredentialsError()) == exit_code_for(refused) == 2
    assert exit_code_for(wrapped) == 2
    assert exit_code_for(throttled) == ExitCode.UNAVAILABLE
    assert exit_code_for(EndpointConnectionError(endpoint_url="http://x")) == 3
    assert exit_code_for(AwsUnavailable("x")) == exit_code_for(ReplicaDied("x")) == 3
    assert exit_code_for(KeyboardInterrupt()) == 130 and exit_code_for(Terminated()) == 143
    assert exit_code_for(ValueError("a bug")) is None  # re-raised: a traceback is the report


@pytest.mark.parametrize("command, args", [
    ("worker", ["--queue-url", "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
                "--topic-arn", "arn:aws:sns:us-east-1:123456789012:verdicts"]),
    ("enqueue", ["--queue-url", "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
                 "--bucket", "b"]),
])
def test_no_credentials_exits_2_before_any_request(command, args, tmp_path):
    """Real AWS endpoints, no credentials anywhere (and no instance metadata to ask): botocore
    refuses before sending anything, so this runs offline."""
    env = clean_env(tmp_path, AWS_EC2_METADATA_DISABLED="true", HOME=str(tmp_path))
    assert_one_line(run([*COMMANDS[command], *args], env), command, 2, "no AWS credentials")
