"""Known-content lists: named lists of PDQ hashes, each with its match distance, and the matcher.

A list lives in the region's records bucket as one JSON object, ``hashlists/<name>.json``
(infra/README.md), written by ``modfleet hashlist import`` and read here by the worker::

    {"format": "modfleet.hashlist/v1", "name": "csam-2026", "threshold": 31,
     "entries": [{"id": "te:123", "pdq": "<64 hex>"}, ...], "updated_at": "...Z"}

One object per list keeps a worker's load to one ListObjectsV2 and one GET per list, and a list's
update atomic (S3 replaces an object whole).  The worker loads every list at start and reloads them
every ``hashlist_refresh_s``; a failed load keeps the lists it had (and tries again after the same
interval), so a list-store outage never stops moderation.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from worker import fingerprints as fp
from worker.logs import get_logger

log = get_logger(__name__)

FORMAT = "modfleet.hashlist/v1"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class HashEntry:
    """One known picture: its PDQ hash and the id its source gave it."""

    id: str
    pdq: str


@dataclass(frozen=True)
class HashList:
    """A named list and the distance (of 256 bits) within which a frame matches an entry."""

    name: str
    threshold: int
    entries: tuple[HashEntry, ...]
    updated_at: str = ""

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "name": self.name, "threshold": self.threshold,
                           "entries": [{"id": e.id, "pdq": e.pdq} for e in self.entries],
                           "updated_at": self.updated_at}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> HashList:
        """Parse a stored list; ValueError when it is not one."""
        body = json.loads(text)
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} object")
        entries = tuple(HashEntry(str(e["id"]), normalise_pdq(e["pdq"])) for e in body["entries"])
        return cls(check_name(body["name"]), check_threshold(body["threshold"]), entries,
                   str(body.get("updated_at", "")))


def object_key(prefix: str, name: str) -> str:
    """Where list ``name`` is stored under ``prefix`` (``hashlists/``)."""
    return f"{prefix}{check_name(name)}.json"


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise ValueError(f"a list name is letters, digits, '.', '_' and '-' (1-128), got {name!r}")
    return name


def check_threshold(threshold: Any) -> int:
    if not isinstance(threshold, int) or not 0 <= threshold <= 128:
        raise ValueError(f"a PDQ distance threshold is 0-128 bits, got {threshold!r}")
    return threshold


def normalise_pdq(text: str) -> str:
    """Lower-case 64 hex digits; ValueError otherwise."""
    return fp.hex_to_bytes(text).hex()


def parse_entries(text: str, source: str = "list") -> list[HashEntry]:
    """Entries from an import file: PDQ hex one a line (optionally followed by an id after a
    comma, tab or space; ``#`` comments), or ThreatExchange's JSON export (the Graph API's
    ``threat_descriptors``/``threat_indicators`` answer: ``{"data": [{"id", "type":
    "HASH_PDQ", "raw_indicator"}]}``).  Line ids default to ``<source>:<line number>``."""
    stripped = text.lstrip()
    if stripped.startswith("{") or stripped.startswith("["):
        return _threatexchange_entries(json.loads(text))
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = re.split(r"[,\t ]+", line, maxsplit=1)
        try:
            pdq = normalise_pdq(fields[0])
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
        entries.append(HashEntry(fields[1].strip() if len(fields) > 1 else f"{source}:{number}",
                                 pdq))
    return entries


def _threatexchange_entries(body: Any) -> list[HashEntry]:
    records = body.get("data", []) if isinstance(body, dict) else body
    entries = []
    for record in records:
        indicator = record.get("indicator", record) if isinstance(record, dict) else {}
        kind = str(indicator.get("type", record.get("type", "HASH_PDQ"))).upper()
        if kind not in ("HASH_PDQ", "PDQ"):
            continue  # other signal types (MD5, vPDQ, URLs) are not matched here
        raw = indicator.get("indicator") or indicator.get("raw_indicator") or \
            record.get("raw_indicator")
        entries.append(HashEntry(f"te:{record.get('id', indicator.get('id'))}",
                                 normalise_pdq(str(raw))))
    return entries


@dataclass(frozen=True)
class KnownMatch:
    """A sampled frame within a list's threshold of one of its entries (the verdict's
    ``known_content`` record)."""

    list: str
    entry: str
    distance: int
    threshold: int
    timestamp_ms: int
    pdq: str


class KnownContent:
    """Lists loaded for matching: one hash matrix per list."""

    def __init__(self, lists: Iterable[HashList] = ()) -> None:
        self.lists = tuple(lists)
        self._matrices = [fp.as_matrix([e.pdq for e in hl.entries]) for hl in self.lists]

    def __len__(self) -> int:
        return sum(len(hl.entries) for hl in self.lists)

    def match(self, prints: Sequence[fp.FrameFingerprint]) -> KnownMatch | None:
        """The closest match of any matchable frame within its list's threshold, or None."""
        frames = [p for p in prints if p.matchable]
        if not frames or not self.lists:
            return None
        queries = fp.as_matrix([p.pdq for p in frames])
        best: KnownMatch | None = None
        for hashlist, matrix in zip(self.lists, self._matrices):
            if not len(matrix):
                continue
            dist = fp.distances(queries, matrix)
            frame, entry = np.unravel_index(int(np.argmin(dist)), dist.shape)
            d = int(dist[frame, entry])
            if d <= hashlist.threshold and (best is None or d < best.distance):
                best = KnownMatch(hashlist.name, hashlist.entries[entry].id, d,
                                  hashlist.threshold, frames[frame].timestamp_ms,
                                  frames[frame].pdq)
        return best


class HashListStore:
    """The records bucket's lists, reloaded every ``refresh_s`` (a failed load keeps the last)."""

    def __init__(self, s3: Any, bucket: str, prefix: str, refresh_s: float,
                 clock: Any = time.monotonic) -> None:
        self.s3, self.bucket, self.prefix = s3, bucket, prefix
        self.refresh_s, self.clock = refresh_s, clock
        self.known = KnownContent()
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    async def current(self) -> KnownContent:
        """The lists, reloaded first when older than ``refresh_s``."""
        if self._loaded_at is None or self.clock() - self._loaded_at >= self.refresh_s:
            async with self._lock:
                if self._loaded_at is None or self.clock() - self._loaded_at >= self.refresh_s:
                    await self.reload()
        return self.known

    async def reload(self) -> bool:
        """Load every list now; False (lists unchanged, logged) when the store failed."""
        self._loaded_at = self.clock()
        try:
            lists = [HashList.from_json(await self._get(key)) for key in await self._keys()]
        except Exception as exc:  # S3 down or a bad object: keep matching what we had
            log.warning("hash lists not reloaded; keeping the last ones", bucket=self.bucket,
                        error=str(exc), lists=len(self.known.lists))
            return False
        self.known = KnownContent(lists)
        log.info("hash lists loaded", lists=len(lists), entries=len(self.known))
        return True

    async def _keys(self) -> list[str]:
        keys, token = [], None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = await self.s3.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, **extra)
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".json")]
            token = page.get("NextContinuationToken")
            if not token:
                return keys

    async def _get(self, key: str) -> bytes:
        response = await self.s3.get_object(Bucket=self.bucket, Key=key)
        async with response["Body"] as body:
            return await body.read()
