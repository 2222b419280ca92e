"""The embedded AWS endpoint: moto's server on a loopback port, in a thread, a child process, or
over HTTPS with a throw-away certificate authority.

A real HTTP endpoint that the real boto3 and aiobotocore clients talk to, so the worker and the
operator tools run unchanged against it.  Every server applies ``moto_patches`` first.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.lab.embedded_aws import moto_patches


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class EmbeddedAws:
    """moto's ThreadedMotoServer on a loopback port; ``start()`` / ``stop()``, or a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._server: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmbeddedAws:
        from moto.server import ThreadedMotoServer  # heavy import, only where the stack is wanted

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request
        moto_patches.apply()
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedAwsProcess(EmbeddedAws):
    """The same server in a child process, so that its CPU is not the caller's (the benchmark
    measures the worker process's CPU as the host's cost; on AWS, S3 runs elsewhere)."""

    def start(self) -> EmbeddedAwsProcess:
        self._server = subprocess.Popen(
            [sys.executable, "-m", "tools.lab.embedded_aws", self.host, str(self.port)],
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                raise RuntimeError(f"the embedded AWS process exited ({self._server.returncode})")
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the embedded AWS process did not listen within 60 s")

    def cpu_s(self) -> float:
        """CPU seconds the server process has used so far (Linux ``/proc``)."""
        fields = Path(f"/proc/{self._server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def stop(self) -> None:
        if self._server is not None:
            self._server.terminate()
            try:
                self._server.wait(10)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait(10)
            self._server = None


def serve_until_terminated(host: str, port: int) -> None:
    """``python -m tools.lab.embedded_aws HOST PORT``: the server of EmbeddedAwsProcess.

    SIGTERM's default action ends it: the server keeps nothing worth a graceful stop, and
    werkzeug's shutdown could hang when asked right after the start.
    """
    EmbeddedAws(host, port).start()
    while True:
        signal.pause()


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one throw-away certificate authority and the loopback certificate it signed."""

    ca_bundle: Path
    certificate: Path  # the server certificate followed by its key (trustme's chain PEM)


def make_certificates(directory: Path, host: str = "127.0.0.1") -> TlsFiles:
    """Write a CA (trustme) and a server certificate for ``host`` and localhost under
    ``directory``."""
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA(organization_name="modfleet embedded AWS")
    server = authority.issue_cert(host, "localhost")
    files = TlsFiles(directory / "ca.pem", directory / "server.pem")
    authority.cert_pem.write_to_path(str(files.ca_bundle))
    server.private_key_and_cert_chain_pem.write_to_path(str(files.certificate))
    files.certificate.chmod(0o600)
    return files


class TlsEmbeddedAws:
    """moto on a loopback port over HTTPS; ``start()`` / ``stop()``, or a context manager.

    The upload bucket's policy denies every request made without TLS (``aws:SecureTransport``), as
    it must in production; so a Terraform apply of infra/ against the embedded stack speaks HTTPS
    to it.  ``directory`` receives the certificates; clients trust ``tls.ca_bundle`` (``env()``
    gives the ``AWS_CA_BUNDLE`` variable that boto3, aiobotocore and the Terraform AWS provider
    read).
    """

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.tls = make_certificates(directory, host)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        return {"AWS_CA_BUNDLE": str(self.tls.ca_bundle)}

    def start(self) -> TlsEmbeddedAws:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        moto_patches.apply(tls=True)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.tls.certificate)
        app = moto_patches.SchemeAware(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self.host, self.port, app, threaded=True,
                                   request_handler=MotoRequestHandler, ssl_context=context)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="embedded-aws-tls")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> TlsEmbeddedAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
