"""The embedded AWS stack served over HTTPS, with what moto lacks for a Terraform apply of infra/.

The upload bucket's policy denies every request made without TLS (``aws:SecureTransport``), as it
must in production; so a run of the real Terraform root against the embedded stack speaks HTTPS to
it: a throw-away certificate authority signs a certificate for the loopback address, and every
client (the AWS provider, boto3, aiobotocore) trusts it through ``AWS_CA_BUNDLE``.

Two guarded patches teach moto 5 what the stack uses and it does not know:

- ``aws:SecureTransport`` in S3 bucket policies: moto ignores the ``Bool`` operator and treats a
  failed condition as a deny, so the TLS-only policy refuses every request.  Statements conditioned
  on ``aws:SecureTransport`` are kept or dropped by the request's real scheme, then moto evaluates
  the rest as before.  Requests the TLS server did not receive are evaluated exactly as before.
- the SQS attribute ``RedriveAllowPolicy``: moto does not return it, so the provider waits forever
  for ``aws_sqs_queue_redrive_allow_policy`` to show up.  moto stores it and returns it.

Each patch is skipped, harmlessly, if a moto release renames what it replaces.
"""

from __future__ import annotations

import contextvars
import datetime
import ipaddress
import json
import logging
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.embedded_aws import _free_port, _s3_events_with_version_ids, _speed_up_moto_sqs

# Whether the request being served arrived over TLS; None outside the TLS server's requests.
_SECURE_TRANSPORT: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "modfleet_secure_transport", default=None)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one throw-away certificate authority and the loopback certificate it signed."""

    ca_bundle: Path
    certificate: Path
    private_key: Path


def make_certificates(directory: Path, host: str = "127.0.0.1") -> TlsFiles:
    """Write a CA and a server certificate for ``host`` (and localhost) under ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modfleet embedded AWS CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
              .issuer_name(ca_name).public_key(server_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=2))
              .add_extension(x509.SubjectAlternativeName(names), critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    pem = serialization.Encoding.PEM
    files.ca_bundle.write_bytes(ca.public_bytes(pem))
    files.certificate.write_bytes(server.public_bytes(pem))
    files.private_key.write_bytes(server_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    files.private_key.chmod(0o600)
    return files


class TlsEmbeddedAws:
    """moto on a loopback port over HTTPS; ``start()`` / ``stop()``, or a context manager.

    ``directory`` receives the certificates; clients trust ``tls.ca_bundle`` (``env()`` gives the
    ``AWS_CA_BUNDLE`` variable that boto3, aiobotocore and the Terraform AWS provider read).
    """

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or _free_port(host)
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
        _speed_up_moto_sqs()  # the same moto fixes as the plain embedded stack, then TLS's own
        _s3_events_with_version_ids()
        teach_moto_secure_transport()
        teach_moto_redrive_allow_policy()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.tls.certificate, self.tls.private_key)
        app = _SchemeAware(DomainDispatcherApplication(create_backend_app))
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


class _SchemeAware:
    """WSGI wrapper that records, for the request being served, whether it came over TLS."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        token = _SECURE_TRANSPORT.set(environ.get("wsgi.url_scheme") == "https")
        try:
            # moto answers in one piece, so the body is complete before the variable is reset.
            return list(self._app(environ, start_response))
        finally:
            _SECURE_TRANSPORT.reset(token)


def teach_moto_secure_transport() -> None:
    """Evaluate ``aws:SecureTransport`` conditions of S3 bucket policies by the request's scheme."""
    import moto.s3.models as s3_models

    bucket_class = getattr(s3_models, "FakeBucket", None)
    original = getattr(bucket_class, "get_permission", None)
    if original is None or getattr(original, "_modfleet_secure_transport", False):
        return

    def get_permission(self: Any, action: str, resource: str) -> Any:
        secure = _SECURE_TRANSPORT.get()
        if secure is None or self.policy is None:
            return original(self, action, resource)
        policy = json.loads(self.policy)
        statements = policy.get("Statement") or []
        kept = [s for s in (_resolve_secure_transport(s, secure) for s in
                            (statements if isinstance(statements, list) else [statements])) if s]
        saved = self.policy
        try:
            self.policy = json.dumps({**policy, "Statement": kept}).encode()
            return original(self, action, resource)
        finally:
            self.policy = saved

    get_permission._modfleet_secure_transport = True  # type: ignore[attr-defined]
    bucket_class.get_permission = get_permission


def _resolve_secure_transport(statement: dict[str, Any], secure: bool) -> dict[str, Any] | None:
    """The statement without its aws:SecureTransport condition if that holds, else None."""
    conditions = statement.get("Condition") or {}
    remaining: dict[str, Any] = {}
    for operator, checks in conditions.items():
        checks = dict(checks)
        expected = checks.pop("aws:SecureTransport", None)
        if expected is not None and operator == "Bool":
            values = expected if isinstance(expected, list) else [expected]
            if str(secure).lower() not in [str(v).lower() for v in values]:
                return None
        elif expected is not None:
            checks["aws:SecureTransport"] = expected
        if checks:
            remaining[operator] = checks
    resolved = {k: v for k, v in statement.items() if k != "Condition"}
    if remaining:
        resolved["Condition"] = remaining
    return resolved


def teach_moto_redrive_allow_policy() -> None:
    """Let moto's SQS store and return the ``RedriveAllowPolicy`` queue attribute."""
    import moto.sqs.models as sqs_models

    queue_class = getattr(sqs_models, "Queue", None)
    attributes = getattr(queue_class, "BASE_ATTRIBUTES", None)
    if not isinstance(attributes, list) or "RedriveAllowPolicy" in attributes:
        return
    # _set_attributes stores unknown attributes under their snake_case name; moto only lacks the
    # name in the list of attributes it returns.  An empty value removes the attribute, as in SQS
    # (the provider's delete sets "" and waits until the attribute is gone).
    queue_class.redrive_allow_policy = property(
        lambda self: self.__dict__.get("_modfleet_redrive_allow_policy") or None,
        lambda self, value: self.__dict__.__setitem__("_modfleet_redrive_allow_policy", value))
    attributes.append("RedriveAllowPolicy")
