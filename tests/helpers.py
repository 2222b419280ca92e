"""Test helpers: run modfleet commands as subprocesses, read verdicts, inject faults over HTTP."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from worker.aws import boto3_client
from tools.embedded_aws import StackInfo, drain_tap

ROOT = Path(__file__).resolve().parents[1]
FAST_MODEL = ["--frames-per-video", "4", "--frame-size", "56", "--batch-size", "2",
              "--batch-wait-ms", "100"]


def modfleet(*args: str) -> list[str]:
    return [sys.executable, "-m", "tools.cli", *args]


def worker_command(stack: StackInfo, *extra: str, endpoint_url: str | None = None) -> list[str]:
    return modfleet("worker", "--queue-url", stack.queue_url, "--topic-arn", stack.topic_arn,
                    "--dlq-url", stack.dlq_url, "--endpoint-url", endpoint_url or
                    stack.endpoint_url, "--wait-time-s", "1", "--log-format", "json",
                    "--no-metrics", *FAST_MODEL, *extra)


def start(command: list[str], **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    kwargs = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE} | kwargs
    return subprocess.Popen(command, cwd=ROOT, env=env, text=True, **kwargs)


def wait_for_log(process: subprocess.Popen, event: str, timeout: float = 120) -> list[dict]:
    """Read the worker's JSON log lines (stderr) until one has ``event``; return those read."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            raise AssertionError(f"worker exited before {event!r}: {seen[-5:]}")
        try:
            record = json.loads(line)
        except ValueError:
            continue
        seen.append(record)
        if record.get("event") == event:
            return seen
    raise AssertionError(f"no {event!r} within {timeout} s")


def read_verdicts(stack: StackInfo, expect_at_least: int = 0, timeout: float = 30) -> list[dict]:
    """Drain the tap queue subscribed to the verdict topic; SNS attributes under ``_attributes``."""
    return [{**m.verdict, "_attributes": m.attributes}
            for m in drain_tap(stack, expect_at_least, timeout)]


def queue_depth(stack: StackInfo, url: str | None = None) -> int:
    """Visible plus in-flight plus delayed messages."""
    sqs = boto3_client("sqs", stack.region, stack.endpoint_url)
    attrs = sqs.get_queue_attributes(QueueUrl=url or stack.queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    return sum(int(v) for v in attrs.values())


def upload(stack: StackInfo, path: Path, key: str) -> None:
    boto3_client("s3", stack.region, stack.endpoint_url).upload_file(str(path), stack.bucket, key)


def send(stack: StackInfo, body: str | dict) -> None:
    sqs = boto3_client("sqs", stack.region, stack.endpoint_url)
    sqs.send_message(QueueUrl=stack.queue_url,
                     MessageBody=body if isinstance(body, str) else json.dumps(body))


class FaultProxy:
    """An HTTP proxy in front of the embedded AWS endpoint that fails SNS Publish on demand.

    moto cannot produce an SNS outage, so this stands between the worker and moto on loopback and
    answers Publish with HTTP 503 while ``failing`` is set; everything else passes through.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.failing = threading.Event()
        self.refused = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.failing.is_set() and b"Action=Publish" in body:
                    proxy.refused += 1
                    payload = (b"<ErrorResponse><Error><Type>Receiver</Type><Code>"
                               b"ServiceUnavailable</Code><Message>injected outage</Message>"
                               b"</Error></ErrorResponse>")
                    self.send_response(503)
                    self.send_header("Content-Type", "text/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port,
                                                  timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = proxy.upstream.netloc
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in {"transfer-encoding", "connection", "content-length"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_until_idle(settings, pool):
    """Run the real worker on ``pool`` in this process until the queue is idle (the settings'
    ``exit_when_idle_s``); the worker's stats."""
    from worker.app import WorkerService
    from worker.metrics import Metrics

    with WorkerService(settings, Metrics(False, settings.region), pool=pool) as service:
        return service.run()
