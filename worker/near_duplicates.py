"""Near-duplicates of earlier verdicts (re-encodes): a bounded in-process index of fingerprints.

Decision (ARCHITECTURE.md): the exact cache is shared through DynamoDB because its key is a hash
lookup; a near-duplicate search is a nearest-neighbour search over 256-bit PDQ hashes, which a
key-value table cannot answer without a scan, and a shared index service (FAISS, an LSH over
DynamoDB) is a system of its own.  So each worker keeps the fingerprints of the last ``capacity``
model verdicts it published, and a re-encode is found when it reaches a worker that saw the
original recently, which is when copies cluster (a clip going viral).  Misses cost a model run,
never a wrong verdict.

Two videos are near-duplicates when at least ``MIN_SHARE`` of the new one's matchable frames are
within ``threshold`` bits of some frame of the earlier one (and at least two frames, or its only
one).  Whether the earlier verdict is reused is policy (``reuse``): by default only ``review`` and
``block`` are, because an ``allow`` inherited by a re-encode is the one mistake a crafted edit would
aim for; otherwise the model runs and the match is recorded in the verdict.
"""

from __future__ import annotations

import collections
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
import numpy as np

from worker import fingerprints as fp
from worker import verdict as verdicts

MIN_SHARE = 0.75
REUSE_POLICIES = ("none", "review_block", "all")


@dataclass(frozen=True)
class NearMatch:
    """An earlier verdict whose frames match this video's."""

    verdict: verdicts.Verdict
    matched_frames: int
    frames: int
    max_distance: int

    @property
    def idempotency_key(self) -> str:
        return self.verdict.idempotency_key

    def reusable(self, policy: str) -> bool:
        """Whether ``policy`` (one of REUSE_POLICIES) lets this match's verdict stand in."""
        decision = self.verdict.decision
        return policy == "all" or (policy == "review_block" and decision in ("review", "block"))

    def record(self, reused: bool) -> verdicts.NearDuplicate:
        """The verdict's ``near_duplicate`` field for this match."""
        return verdicts.NearDuplicate(self.idempotency_key, self.verdict.decision,
                                      self.matched_frames, self.frames, self.max_distance, reused)


class RecentIndex:
    """The last ``capacity`` model verdicts' matchable frames; thread-safe."""

    def __init__(self, capacity: int, threshold: int = fp.DEFAULT_THRESHOLD) -> None:
        self.capacity, self.threshold = capacity, threshold
        self._entries: collections.deque = collections.deque(maxlen=max(capacity, 1))
        self._lock = threading.Lock()
        self._stacked: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, verdict: verdicts.Verdict) -> None:
        """Index a published model verdict by its fingerprints (no-op without matchable ones)."""
        prints = verdict.fingerprints.frames if verdict.fingerprints else ()
        hashes = [p.pdq for p in prints if p.matchable]
        if not hashes or self.capacity <= 0:
            return
        with self._lock:
            self._entries.append((fp.as_matrix(hashes), verdict))
            self._stacked = None

    def find(self, prints: Sequence[fp.FrameFingerprint]) -> NearMatch | None:
        """The earlier verdict sharing the most frames with ``prints``, if near enough."""
        hashes = [p.pdq for p in prints if p.matchable]
        if not hashes:
            return None
        with self._lock:
            if not self._entries:
                return None
            matrix, owners = self._stack()
            entries = list(self._entries)
        dist = fp.distances(fp.as_matrix(hashes), matrix)  # (frames, indexed frames)
        need = max(min(2, len(hashes)), math.ceil(MIN_SHARE * len(hashes)))
        best: NearMatch | None = None
        # Only earlier videos with at least one frame in reach are worth counting.
        for owner in np.unique(owners[(dist <= self.threshold).any(axis=0)]):
            closest = dist[:, owners == owner].min(axis=1)
            matched = closest <= self.threshold
            count = int(matched.sum())
            if count >= need and (best is None or count > best.matched_frames):
                best = NearMatch(entries[owner][1], count, len(hashes),
                                 int(closest[matched].max()))
        return best

    def _stack(self) -> tuple[np.ndarray, np.ndarray]:
        if self._stacked is None:
            matrices = [m for m, _ in self._entries]
            owners = np.concatenate([np.full(len(m), i) for i, m in enumerate(matrices)])
            self._stacked = (np.concatenate(matrices), owners)
        return self._stacked
