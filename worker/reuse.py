"""What the worker reuses instead of running the model, and what it records after publishing.

``Reuse`` bundles the optional parts (each None when off): the exact-copy verdict cache
(DynamoDB), the known-content lists (records bucket), the recent near-duplicate index, and where
evidence frames go.  ``worker.pipeline`` consults it around the model; ``RecordingPublisher`` wraps
the SNS publisher so that a model verdict enters the cache and the index only once it is published
(a verdict that never went out must not be reused), and counts ``CacheHits`` by kind.

Order for one video, cheapest first (ARCHITECTURE.md): HEAD for S3's SHA-256 and the table lookup
(no GET, no decode on a hit); else fetch, decode, fingerprint; a known-content match blocks before
the model; a near-duplicate the policy lets stand is reused; else the model runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker import verdict as verdicts
from worker.evidence import EvidenceTarget
from worker.hashlists import HashListStore, KnownContent
from worker.logs import get_logger
from worker.metrics import Metrics
from worker.near_duplicates import RecentIndex
from worker.verdict_cache import VerdictCache

log = get_logger(__name__)


@dataclass(frozen=True)
class Reuse:
    """The worker's reuse parts; the defaults turn every one off (the pipeline as before)."""

    cache: VerdictCache | None = None
    hashlists: HashListStore | None = None
    recent: RecentIndex | None = None
    near_duplicate_reuse: str = "review_block"
    fingerprints: bool = False
    evidence: EvidenceTarget | None = None

    async def known_content(self) -> KnownContent | None:
        """The current lists (reloaded when stale; maybe empty), or None when the lists are off."""
        return await self.hashlists.current() if self.hashlists is not None else None


def reuse_kind(verdict: verdicts.Verdict) -> str | None:
    """exact | near_duplicate | known_content for a verdict the model did not make, else None."""
    if verdict.known_content is not None:
        return "known_content"
    return verdict.cached_from.kind if verdict.cached_from else None


class RecordingPublisher:
    """A publisher that, after each successful publish, records the verdict for later reuse."""

    def __init__(self, publisher: Any, reuse: Reuse, metrics: Metrics) -> None:
        self.publisher, self.reuse, self.metrics = publisher, reuse, metrics

    async def publish(self, verdict: verdicts.Verdict, budget_s: float) -> str:
        """Publish (``RetryLater`` as the inner publisher raises it), then record."""
        message_id = await self.publisher.publish(verdict, budget_s)
        kind = reuse_kind(verdict)
        if kind is not None:
            self.metrics.count("CacheHits", Kind=kind)  # dimension sets [] and [Kind]
        elif verdict.status == "ok":
            if self.reuse.recent is not None:
                self.reuse.recent.add(verdict)
            if self.reuse.cache is not None:
                await self.reuse.cache.store(verdict)  # failures are logged, never raised
        return message_id
