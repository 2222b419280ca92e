"""A fault-injecting HTTP proxy in front of the embedded AWS endpoint.

moto answers every call correctly; a fleet meets throttling, 5xx answers, partial batch failures and
connections reset mid-body.  This proxy stands between the worker and moto on loopback and, for a
set share of each call kind the worker makes, answers with a fault instead (or as well):

| call kind | faults |
| --- | --- |
| ``s3:GetObject`` | 500 InternalError, 503 SlowDown, connection reset after half the body |
| ``sqs:ReceiveMessage`` | 500 InternalError, reset after moto handed out the messages |
| ``sqs:ChangeMessageVisibility`` | 500 InternalError |
| ``sqs:ChangeMessageVisibilityBatch`` | 500 InternalError, a partial batch failure |
| ``sqs:DeleteMessageBatch`` | 500 InternalError, a partial batch failure |
| ``sqs:SendMessage`` (dead-lettering) | 500 InternalError |
| ``sns:Publish`` | 400 Throttling (SNS's "Rate exceeded") |
| ``dynamodb:GetItem``, ``dynamodb:PutItem`` (the verdict cache) | 500 InternalServerError, 400 ProvisionedThroughputExceededException |

``outage(kind)`` fails every call of a kind until ``restore(kind)``.  Every call and every fault is
counted per kind.  A partial batch failure forwards only some entries to moto and reports the
others Failed (``SenderFault`` false), as SQS does.  Draws come from one seeded generator; which
call meets which draw depends on the worker's timing, so a run is repeatable in its shares, not
call for call.
"""

from __future__ import annotations

import collections
import http.client
import json
import random
import socket
import struct
import threading
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

FAULTS: dict[str, tuple[str, ...]] = {
    "s3:GetObject": ("http500", "slowdown", "reset_mid_body"),
    "sqs:ReceiveMessage": ("http500", "reset_after_receive"),
    "sqs:ChangeMessageVisibility": ("http500",),
    "sqs:ChangeMessageVisibilityBatch": ("http500", "partial_batch"),
    "sqs:DeleteMessageBatch": ("http500", "partial_batch"),
    "sqs:SendMessage": ("http500",),
    "sns:Publish": ("throttling",),
    "dynamodb:GetItem": ("http500", "throttling"),
    "dynamodb:PutItem": ("http500", "throttling"),
}
CALL_KINDS = tuple(FAULTS)
_SQS_TARGET = "AmazonSQS."
_DYNAMODB_TARGET = "DynamoDB_20120810."


class FaultProxy:
    """Loopback proxy to ``upstream``; fails ``rate`` of each kind in ``kinds`` (default: all)
    with one of its ``FAULTS`` (or of ``faults[kind]`` where given)."""

    def __init__(self, upstream: str, rate: float = 0.0, seed: int = 0,
                 kinds: Iterable[str] = CALL_KINDS,
                 faults: Mapping[str, tuple[str, ...]] | None = None) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be within 0-1, got {rate}")
        kinds = set(kinds)
        unknown = (kinds | set(faults or {})) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown call kinds {sorted(unknown)}; known: {list(CALL_KINDS)}")
        self.faults = {**FAULTS, **(faults or {})}
        if any(not set(f) <= set(FAULTS[k]) or not f for k, f in self.faults.items()):
            raise ValueError(f"faults must be non-empty subsets of {FAULTS}")
        self.upstream = urlsplit(upstream)
        self.rate, self.kinds = rate, frozenset(kinds)
        self.calls: collections.Counter[str] = collections.Counter()
        self.injected: collections.Counter[str] = collections.Counter()  # by "kind fault"
        self._outages: set[str] = set()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), _handler_class(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def outage(self, kind: str) -> None:
        """Fail every call of ``kind`` (with its first fault) until ``restore``."""
        with self._lock:
            self._outages.add(kind)

    def restore(self, kind: str) -> None:
        with self._lock:
            self._outages.discard(kind)

    def injected_by_kind(self) -> dict[str, int]:
        """Faults injected per call kind (all fault types of a kind together)."""
        totals: collections.Counter[str] = collections.Counter()
        with self._lock:
            for label, count in self.injected.items():
                totals[label.split(" ")[0]] += count
        return dict(totals)

    def draw(self, kind: str | None) -> str | None:
        """Count a call of ``kind``; the fault to inject into it, or None to pass it through."""
        if kind is None:
            return None
        with self._lock:
            self.calls[kind] += 1
            if kind in self._outages:
                fault = self.faults[kind][0]
            elif kind in self.kinds and self.rate and self._rng.random() < self.rate:
                fault = self._rng.choice(self.faults[kind])
            else:
                return None
            self.injected[f"{kind} {fault}"] += 1
            return fault

    def failed_entries(self, ids: list[str]) -> set[str]:
        """For a partial batch failure: a non-empty random subset of the entry ids."""
        with self._lock:
            chosen = {i for i in ids if self._rng.random() < 0.5}
            return chosen or {self._rng.choice(ids)}

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def call_kind(method: str, path: str, headers: dict[str, str], body: bytes) -> str | None:
    """Which of the worker's calls a request is (None: one the proxy never fails)."""
    target = headers.get("x-amz-target", "")
    if target.startswith(_SQS_TARGET):
        kind = "sqs:" + target[len(_SQS_TARGET):]
        return kind if kind in FAULTS else None
    if target.startswith(_DYNAMODB_TARGET):
        kind = "dynamodb:" + target[len(_DYNAMODB_TARGET):]
        return kind if kind in FAULTS else None
    if method == "POST" and b"Action=" in body:
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
        return "sns:Publish" if action == "Publish" else None
    # S3, path style on loopback: GET /bucket/key (a bucket listing is GET /bucket?...)
    parts = urlsplit(path)
    if method == "GET" and parts.path.strip("/").count("/") >= 1:
        return "s3:GetObject"
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # a killed worker hangs up
            super().handle_error(request, client_address)


def _handler_class(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.proxy = proxy
    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: FaultProxy
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, *args: object) -> None:  # quiet: one line per request otherwise
        pass

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        kind = call_kind(self.command, self.path, headers, body)
        fault = self.proxy.draw(kind)
        if fault is None:
            self._relay(*self._forward(body))
        elif fault == "partial_batch":
            self._partial_batch(body)
        elif fault == "reset_after_receive":
            self._forward(body)  # moto hands the messages out; the answer never arrives
            self._reset()
        elif fault == "reset_mid_body":
            status, response_headers, data = self._forward(body)
            if status != 200 or len(data) < 2:
                self._relay(status, response_headers, data)
            else:
                self._relay(status, response_headers, data[:len(data) // 2], full=len(data))
                self._reset()
        else:
            self._error(kind or "", fault)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    def finish(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
        super().finish()

    # ---- upstream --------------------------------------------------------------------------------

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream = self.proxy.upstream
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        headers["Host"] = upstream.netloc
        headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):  # a kept-alive upstream connection may have been closed by moto
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(upstream.hostname, upstream.port,
                                                            timeout=60)
            try:
                self._upstream.request(self.command, self.path, body=body, headers=headers)
                response = self._upstream.getresponse()
                data = response.read()
                return response.status, response.getheaders(), data
            except (http.client.HTTPException, OSError):
                self._upstream.close()
                self._upstream = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _relay(self, status: int, headers: list[tuple[str, str]], data: bytes,
               full: int | None = None) -> None:
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in {"transfer-encoding", "connection", "content-length", "server",
                                   "date"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(full if full is not None else len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    # ---- faults ----------------------------------------------------------------------------------

    def _error(self, kind: str, fault: str) -> None:
        if kind.startswith("sqs:"):
            status, code = 500, "InternalError"
            payload = json.dumps({"__type": f"com.amazonaws.sqs#{code}",
                                  "message": "injected fault"}).encode()
            headers = [("Content-Type", "application/x-amz-json-1.0"),
                       ("x-amzn-query-error", f"{code};Receiver")]
        elif kind.startswith("dynamodb:"):
            status, code = ((400, "ProvisionedThroughputExceededException")
                            if fault == "throttling" else (500, "InternalServerError"))
            payload = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}",
                                  "message": "injected fault"}).encode()
            headers = [("Content-Type", "application/x-amz-json-1.0")]
        elif kind.startswith("sns:"):
            status, payload = 400, _query_error("Sender", "Throttling", "Rate exceeded")
            headers = [("Content-Type", "text/xml")]
        else:
            status, code = (503, "SlowDown") if fault == "slowdown" else (500, "InternalError")
            payload = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>"
                       f"<Message>injected fault</Message></Error>").encode()
            headers = [("Content-Type", "application/xml")]
        self._relay(status, headers, payload)

    def _partial_batch(self, body: bytes) -> None:
        request = json.loads(body or b"{}")
        entries = request.get("Entries", [])
        failing = self.proxy.failed_entries([e["Id"] for e in entries]) if entries else set()
        kept = [e for e in entries if e["Id"] not in failing]
        result: dict = {"Successful": [], "Failed": []}
        if kept:
            status, _, data = self._forward(json.dumps({**request, "Entries": kept}).encode())
            if status != 200:
                self._relay(status, [("Content-Type", "application/x-amz-json-1.0")], data)
                return
            upstream = json.loads(data or b"{}")
            result["Successful"] = upstream.get("Successful", [])
            result["Failed"] = upstream.get("Failed", [])
        result["Failed"] += [{"Id": i, "Code": "InternalError", "SenderFault": False,
                              "Message": "injected partial batch failure"} for i in sorted(failing)]
        self._relay(200, [("Content-Type", "application/x-amz-json-1.0")],
                    json.dumps(result).encode())

    def _reset(self) -> None:
        """Drop the client connection with a TCP reset (SO_LINGER 0), as a failing peer does."""
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()


def _query_error(kind: str, code: str, message: str) -> bytes:
    return (f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}"
            f"</Message></Error><RequestId>injected</RequestId></ErrorResponse>").encode()
