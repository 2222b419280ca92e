"""Known-content lists in the region's records bucket: import, list, remove.

Each list is one object, ``<prefix><name>.json`` (format: worker/hashlists.py, which the worker
reads); an import replaces the list whole unless ``append`` keeps the entries already there.
Entries are de-duplicated by hash, the first id kept.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tools.ops.exceptions import AwsCallFailed, InvalidRequest
from worker.hashlists import HashEntry, HashList, check_name, check_threshold, object_key, \
    parse_entries


@dataclass(frozen=True)
class ListSummary:
    """One stored list, as ``modfleet hashlist list`` shows it."""

    name: str
    entries: int
    threshold: int
    updated_at: str
    key: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def import_list(s3: Any, bucket: str, prefix: str, name: str, text: str, threshold: int,
                append: bool = False) -> ListSummary:
    """Store the entries of ``text`` (PDQ lines or ThreatExchange JSON) as list ``name``."""
    try:
        check_name(name)
        check_threshold(threshold)
        entries = parse_entries(text, source=name)
    except json.JSONDecodeError as exc:  # its own text names no file and no format
        raise InvalidRequest(f"not ThreatExchange JSON nor PDQ lines: {exc}") from None
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    if not entries:
        raise InvalidRequest("the file holds no PDQ hash")
    if append:
        existing = _read(s3, bucket, object_key(prefix, name))
        entries = [*(existing.entries if existing else ()), *entries]
    stored = HashList(name, threshold, _unique(entries),
                      datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    key = object_key(prefix, name)
    _call("s3:PutObject", s3.put_object, Bucket=bucket, Key=key, Body=stored.to_json().encode(),
          ContentType="application/json")
    return _summary(stored, key)


def list_lists(s3: Any, bucket: str, prefix: str) -> list[ListSummary]:
    """Every list stored under ``prefix``, by name."""
    summaries = []
    paginator = s3.get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if item["Key"].endswith(".json"):
                    stored = _read(s3, bucket, item["Key"])
                    if stored is not None:
                        summaries.append(_summary(stored, item["Key"]))
    except (ClientError, BotoCoreError) as exc:
        raise _failure("s3:ListObjectsV2", bucket, exc) from exc
    return sorted(summaries, key=lambda s: s.name)


def remove_list(s3: Any, bucket: str, prefix: str, name: str) -> bool:
    """Delete list ``name``; False when there was none."""
    try:
        key = object_key(prefix, name)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    if _read(s3, bucket, key) is None:
        return False
    _call("s3:DeleteObject", s3.delete_object, Bucket=bucket, Key=key)
    return True


def _read(s3: Any, bucket: str, key: str) -> HashList | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise _failure(f"s3:GetObject {key}", bucket, exc) from exc
    except BotoCoreError as exc:
        raise _failure(f"s3:GetObject {key}", bucket, exc) from exc
    try:
        return HashList.from_json(body)
    except (ValueError, KeyError, TypeError) as exc:
        raise AwsCallFailed(f"s3://{bucket}/{key} is not a hash list: {exc}") from exc


def _call(operation: str, method: Any, **kwargs: Any) -> Any:
    try:
        return method(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise _failure(operation, kwargs.get("Bucket", ""), exc) from exc


def _failure(operation: str, bucket: str, exc: Exception) -> Exception:
    """A missing bucket is the operator's to fix (exit 2); anything else is the service's (3)."""
    code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
    if code == "NoSuchBucket":
        return InvalidRequest(f"no records bucket named {bucket!r} (--records-bucket)")
    return AwsCallFailed(f"{operation} failed: {exc}")


def _unique(entries: list[HashEntry]) -> tuple[HashEntry, ...]:
    seen: dict[str, HashEntry] = {}
    for entry in entries:
        seen.setdefault(entry.pdq, entry)
    return tuple(seen.values())


def _summary(stored: HashList, key: str) -> ListSummary:
    return ListSummary(stored.name, len(stored.entries), stored.threshold, stored.updated_at, key)
