"""The shared verdict cache: one DynamoDB item per (content, model version, policy version).

``pk = "<content id>#<model name>@<model version>#<policy version>"`` (infra/README.md; the content id
is ``sha256:<hex>``, see worker/content_digest.py), the verdict as compact JSON in ``verdict``, and
``expires_at`` (epoch seconds) for the table's TTL.  The worker's role may only GetItem and PutItem.

The cache is an optimisation and never a reason to lose or delay a message: a lookup that fails is
a miss (the model runs), and a write that fails is logged and dropped (the verdict was already
published).  Only verdicts the model produced are written; cache hits, known-content blocks and
error verdicts are not (their reasons are not properties of the bytes and this model alone).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from model.api import ModelIdentity
from worker import verdict as verdicts
from worker.errors_aws import error_code
from worker.exceptions import AwsSettingRejected
from worker.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class CachedVerdict:
    """A verdict found in the table for the same content, model version and policy version."""

    pk: str
    verdict: verdicts.Verdict


def cache_key(content_id: str, model: ModelIdentity) -> str:
    """The table's partition key for ``content_id`` judged by ``model``."""
    return f"{content_id}#{model.name}@{model.version}#{model.policy_version}"


def cacheable(verdict: verdicts.Verdict) -> bool:
    """Whether a published verdict should be written to the table."""
    return (verdict.status == "ok" and not verdict.cache_hit and verdict.known_content is None
            and bool(verdict.video.sha256))


class VerdictCache:
    """GetItem / PutItem on the verdict table through the worker's aiobotocore client."""

    def __init__(self, dynamodb: Any, table: str, ttl_s: float,
                 clock: Any = time.time) -> None:
        self.dynamodb, self.table, self.ttl_s, self.clock = dynamodb, table, ttl_s, clock

    async def probe(self) -> None:
        """At start, one GetItem (all the worker's role may do): a table that does not exist is a
        setting to fix (``AwsSettingRejected``); any other failure is left to the lookups."""
        try:
            await self.dynamodb.get_item(TableName=self.table, Key={"pk": {"S": "probe"}})
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise AwsSettingRejected(f"--verdict-table {self.table}: no such DynamoDB table "
                                         f"in this region") from None
            log.warning("verdict table did not answer at start; lookups will try again",
                        table=self.table, error=str(exc))

    async def lookup(self, content_id: str, model: ModelIdentity) -> CachedVerdict | None:
        """The cached verdict, or None on a miss, an expired item, or any failure (logged)."""
        pk = cache_key(content_id, model)
        try:
            item = (await self.dynamodb.get_item(
                TableName=self.table, Key={"pk": {"S": pk}},
                ProjectionExpression="verdict, expires_at")).get("Item")
        except Exception as exc:  # the table is a shortcut: without it the model runs
            log.warning("verdict cache lookup failed; running the model", pk=pk, error=str(exc))
            return None
        # DynamoDB deletes expired items lazily (within days): an expired one is a miss.
        if not item or float(item.get("expires_at", {}).get("N", "0")) <= self.clock():
            return None
        try:  # validated against its schema: an item from another release may not fit
            return CachedVerdict(pk, verdicts.from_json(json.loads(item["verdict"]["S"])))
        except Exception as exc:  # unreadable, or off its schema: a miss, never a wrong verdict
            log.warning("verdict cache item unreadable; running the model", pk=pk, error=str(exc))
            return None

    async def store(self, verdict: verdicts.Verdict) -> bool:
        """Write a published verdict (if ``cacheable``); False when skipped or failed (logged)."""
        if not cacheable(verdict):
            return False
        pk = cache_key(str(verdict.video.sha256), verdict.model)
        now = self.clock()
        body = json.dumps(verdicts.to_json(verdict), separators=(",", ":"))
        try:
            await self.dynamodb.put_item(TableName=self.table, Item={
                "pk": {"S": pk},
                "verdict": {"S": body},
                "idempotency_key": {"S": verdict.idempotency_key},
                "created_at": {"N": str(int(now))},
                "expires_at": {"N": str(int(now + self.ttl_s))}})
        except Exception as exc:  # already published: a lost write only costs a model run later
            log.warning("verdict cache write failed", pk=pk, error=str(exc))
            return False
        return True
