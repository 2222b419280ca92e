"""Every patch the embedded stack makes to moto, in one module; ``apply(tls=...)`` applies them.

moto 5 in server mode is the embedded AWS.  Where it differs from AWS in a way the stack depends
on, a guarded patch makes it behave as AWS does:

- SQS is O(queue length) per message (its retention check rebuilds every attribute): the same
  checks computed directly, so a DLQ of 1,000 letters or a benchmark corpus takes seconds.
- S3 event notifications lack ``versionId`` for a versioned bucket: added, as S3 sends it.
- (TLS stack) ``aws:SecureTransport`` in S3 bucket policies: moto ignores the ``Bool`` operator and
  treats a failed condition as a deny, so the TLS-only policy refuses every request.  Statements
  conditioned on ``aws:SecureTransport`` are kept or dropped by the request's real scheme
  (``SchemeAware`` records it per request), then moto evaluates the rest as before.
- (TLS stack) the SQS attribute ``RedriveAllowPolicy``: moto does not return it, so the Terraform
  provider waits forever for ``aws_sqs_queue_redrive_allow_policy``.  moto stores and returns it.

Each patch is applied once and skipped, harmlessly, if a moto release renames what it replaces.
"""

from __future__ import annotations

import contextvars
import json
from typing import Any

# Whether the request being served arrived over TLS; None outside the TLS server's requests.
_SECURE_TRANSPORT: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "modfleet_secure_transport", default=None)


def apply(tls: bool = False) -> None:
    """Apply the patches every embedded stack needs, and with ``tls`` those of the HTTPS stack."""
    speed_up_sqs()
    s3_events_with_version_ids()
    if tls:
        teach_secure_transport()
        teach_redrive_allow_policy()


def speed_up_sqs() -> None:
    """Make moto's SQS O(1) per message where it is O(queue length), keeping its behaviour.

    moto 5 re-counts every message of a queue for each message it receives or sends (its
    retention check builds all queue attributes, and reads the clock through naive datetimes), so
    a DLQ of 1,000 messages or a benchmark corpus took minutes on two cores.  The same checks,
    computed directly.  Skipped, harmlessly, if a moto release renames what it replaces.
    """
    import time

    import moto.sqs.models as models

    backend = models.SQSBackend
    if getattr(backend, "_modfleet_fast", False) or not hasattr(
            backend, "is_message_valid_based_on_retention_period"):
        return
    slow_time, slow_millis = models.unix_time, models.unix_time_millis

    def within_retention(self: Any, queue_name: str, message: Any) -> bool:
        retention_s = int(self.get_queue(queue_name).message_retention_period)
        return retention_s + message.sent_timestamp / 1000 > time.time()

    backend.is_message_valid_based_on_retention_period = within_retention
    models.unix_time = lambda dt=None: time.time() if dt is None else slow_time(dt)
    models.unix_time_millis = lambda dt=None: (time.time() * 1000.0 if dt is None
                                               else slow_millis(dt))
    backend._modfleet_fast = True


def s3_events_with_version_ids() -> None:
    """Add ``versionId`` to moto's S3 event records, as S3 sends it for a versioned bucket."""
    import moto.s3.notifications as notifications

    make_event = getattr(notifications, "_get_s3_event", None)
    if make_event is None or getattr(make_event, "_modfleet_versioned", False):
        return

    def with_version_id(event_name: str, bucket: Any, key: Any, *args: Any, **kwargs: Any
                        ) -> dict[str, Any]:
        event = make_event(event_name, bucket, key, *args, **kwargs)
        version = getattr(key, "version_id", None)
        if version and version != "null":
            for record in event.get("Records", []):
                record["s3"]["object"]["versionId"] = version
        return event

    with_version_id._modfleet_versioned = True  # type: ignore[attr-defined]
    notifications._get_s3_event = with_version_id


class SchemeAware:
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


def teach_secure_transport() -> None:
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


def teach_redrive_allow_policy() -> None:
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
