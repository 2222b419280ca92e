"""The parts of issue 21's reuse, each on its own: content ids from S3's checksums, hash lists,
the recent near-duplicate index, and the verdict cache on the embedded DynamoDB."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json

import numpy as np
import pytest

from model.api import Label, ModelIdentity, ModelOutput
from worker import verdict as v
from worker.aws import AsyncClients
from worker.content_digest import content_id
from worker.exceptions import AwsSettingRejected
from worker.evidence import encode_jpeg, frame_times, with_evidence
from worker.fingerprints import fingerprint_frames
from worker.hashlists import HashEntry, HashList, KnownContent, parse_entries
from worker.near_duplicates import RecentIndex
from worker.records import Job
from worker.verdict_cache import VerdictCache, cache_key
from worker.verdict_reuse import fingerprint_field, known_content_block, model_verdict

MODEL = ModelIdentity("m", "s1", "torch", "none", True, "2026-11")
CTX = v.Context(region="us-east-1", worker_id="w", model=MODEL)
DATA = b"same bytes"
B64 = base64.b64encode(hashlib.sha256(DATA).digest()).decode()
HEX = hashlib.sha256(DATA).hexdigest()


def test_content_id_is_s3s_sha256_never_the_etag():
    assert content_id({"ChecksumSHA256": B64, "ETag": '"abc"'}) == f"sha256:{HEX}"
    # A multipart upload's checksum is a composite: kept apart, with the part count.
    assert content_id({"ChecksumSHA256": f"{B64}-3", "ETag": '"abc-3"'}) == \
        f"sha256-composite:{HEX}-3"
    assert content_id({"ChecksumSHA256": B64, "ETag": '"abc-2"'}) == f"sha256-composite:{HEX}-2"
    assert content_id({"ChecksumSHA256": B64, "ChecksumType": "COMPOSITE", "ETag": '"a"'}) == \
        f"sha256-composite:{HEX}-0"
    assert content_id({"ChecksumCRC32": "O0HJ5g==", "ETag": '"abc"'}) is None
    assert content_id({"ChecksumSHA256": "not base64!"}) is None


def test_cache_key_follows_the_contract():
    assert cache_key(f"sha256:{HEX}", MODEL) == f"sha256:{HEX}#m@s1#2026-11"


def _frames(seed: int, n: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8)
    return small.repeat(7, axis=1).repeat(7, axis=2)  # 56 px, blocky: distinct PDQ per seed


def test_import_formats_and_a_list_round_trip():
    pdq = "0f" * 32
    lines = parse_entries(f"# comment\n{pdq.upper()} case-1\n\n{'a' * 64},x-2\n{'b' * 64}\n",
                          source="l")
    assert lines == [HashEntry("case-1", pdq), HashEntry("x-2", "a" * 64),
                     HashEntry("l:5", "b" * 64)]
    exported = json.dumps({"data": [{"id": "99", "type": "HASH_PDQ", "raw_indicator": pdq},
                                    {"id": "7", "type": "HASH_MD5", "raw_indicator": "d41d"}]})
    assert parse_entries(exported) == [HashEntry("te:99", pdq)]
    with pytest.raises(ValueError, match="line 1"):
        parse_entries("123\n")
    stored = HashList("l", 20, tuple(lines), "2026-12-05T00:00:00Z")
    assert HashList.from_json(stored.to_json()) == stored


def test_known_content_matches_within_the_threshold_and_never_on_flat_frames():
    prints = fingerprint_frames(_frames(1), (0, 250, 500, 750))
    other = fingerprint_frames(_frames(2), (0, 250, 500, 750))
    known = KnownContent([HashList("bad", 31, (HashEntry("e1", prints[2].pdq),))])
    match = known.match(other[:2] + prints[2:3])
    assert (match.list, match.entry, match.distance, match.timestamp_ms) == ("bad", "e1", 0, 500)
    assert known.match(other) is None
    flat = fingerprint_frames(np.zeros((2, 56, 56, 3), np.uint8), (0, 1))
    assert known.match(flat) is None
    assert KnownContent([HashList("flat", 31, (HashEntry("f", flat[0].pdq),))]).match(flat) is None


def _verdict(prints, decision: str, key: str, sha256: str | None = None) -> v.Verdict:
    output = ModelOutput(labels=(Label("Violence", "", 1, 60.0, (0, 250), "llm"),),
                         decision=decision)
    verdict = model_verdict(Job("b", key[-6:] + ".mp4"), v.VideoFacts("e", 10, 1.0, None, sha256),
                            output, prints, None, CTX, {"fetch": 1.0})
    return dataclasses.replace(verdict, idempotency_key=key)


def test_recent_index_finds_the_video_with_most_frames_in_reach():
    times = (0, 250, 500, 750)
    index = RecentIndex(capacity=2)
    a, b = fingerprint_frames(_frames(1), times), fingerprint_frames(_frames(2), times)
    index.add(_verdict(a, "review", "sha256:" + "a" * 64))
    index.add(_verdict(b, "allow", "sha256:" + "b" * 64))
    match = index.find(a)
    assert match.idempotency_key == "sha256:" + "a" * 64 and match.matched_frames == 4
    assert match.reusable("review_block") and not match.reusable("none")
    assert not index.find(b).reusable("review_block") and index.find(b).reusable("all")
    # Two frames of four (under 75%) are not a near-duplicate.
    assert index.find(a[:2] + fingerprint_frames(_frames(3), times)[:2]) is None
    index.add(_verdict(fingerprint_frames(_frames(4), times), "block", "sha256:" + "c" * 64))
    assert index.find(a) is None and len(index) == 2  # the oldest was dropped


def test_evidence_keys_stand_beside_the_timestamps():
    labels = (v.Label("V", "", 1, 50.0, (0, 500), "llm"), v.Label("W", "", 1, 50.0, (500,), "llm"))
    assert frame_times(labels) == [0, 500]
    keyed = with_evidence(labels, {500: "evidence/k/500ms.jpg"})
    assert keyed[0].evidence_keys == (None, "evidence/k/500ms.jpg")
    assert encode_jpeg(_frames(1)[0])[:2] == b"\xff\xd8"


def test_verdict_cache_on_the_embedded_table(stack):
    clock = [1000.0]
    prints = fingerprint_frames(_frames(1), (0, 250, 500, 750))
    verdict = _verdict(prints, "review", "sha256:" + "1" * 64, sha256=f"sha256:{HEX}")

    async def run():
        async with AsyncClients(stack.region, stack.endpoint_url) as aws:
            cache = VerdictCache(aws.dynamodb, stack.verdict_table, ttl_s=60,
                                 clock=lambda: clock[0])
            assert await cache.lookup(f"sha256:{HEX}", MODEL) is None
            assert await cache.store(verdict)
            assert not await cache.store(dataclasses.replace(verdict, cache_hit=True))
            hit = await cache.lookup(f"sha256:{HEX}", MODEL)
            clock[0] += 61
            expired = await cache.lookup(f"sha256:{HEX}", MODEL)
            await cache.probe()
            broken = VerdictCache(aws.dynamodb, "no-such-table", ttl_s=60)
            with pytest.raises(AwsSettingRejected, match="--verdict-table no-such-table"):
                await broken.probe()  # at start: a setting to fix, exit 2
            return hit, expired, await broken.lookup(f"sha256:{HEX}", MODEL), \
                await broken.store(verdict)

    hit, expired, failed_lookup, failed_store = asyncio.run(run())
    assert hit.verdict == verdict and expired is None
    assert failed_lookup is None and failed_store is False  # a miss and a logged loss


class _Inner:
    def __init__(self):
        self.published = []

    async def publish(self, verdict, budget_s):
        self.published.append(verdict.idempotency_key)
        return "m-1"


def test_recording_publisher_counts_hits_and_indexes_only_published_model_verdicts():
    from worker.metrics import Metrics
    from worker.reuse import RecordingPublisher, Reuse

    lines = []
    recent = RecentIndex(capacity=4)
    publisher = RecordingPublisher(_Inner(), Reuse(recent=recent), Metrics(True, "r", lines.append))
    prints = fingerprint_frames(_frames(1), (0, 250, 500, 750))
    model = _verdict(prints, "review", "sha256:" + "a" * 64)
    hit = dataclasses.replace(model, idempotency_key="sha256:" + "b" * 64, cache_hit=True,
                              cached_from=v.CachedFrom("exact", model.idempotency_key, "t"))
    assert asyncio.run(publisher.publish(model, 1.0)) == "m-1"
    asyncio.run(publisher.publish(hit, 1.0))
    assert len(recent) == 1  # the model's verdict, not the hit
    records = [json.loads(line) for line in lines]
    assert [r["_aws"]["CloudWatchMetrics"][0]["Dimensions"] for r in records] == [[[], ["Kind"]]]
    assert records[0]["Kind"] == "exact" and records[0]["CacheHits"] == 1


def test_evidence_frames_are_written_with_the_evidence_key(stack):
    from concurrent.futures import ThreadPoolExecutor

    from worker.aws import boto3_client
    from worker.evidence import EvidenceTarget, write_evidence

    kms = boto3_client("kms", stack.region, stack.endpoint_url)
    key_id = kms.create_key(Description="evidence")["KeyMetadata"]["KeyId"]
    target = EvidenceTarget(stack.records_bucket, "evidence/", key_id)

    async def run():
        async with AsyncClients(stack.region, stack.endpoint_url) as aws:
            with ThreadPoolExecutor(1) as pool:
                return await write_evidence(aws.s3, target, pool, "sha256:" + "e" * 64,
                                            _frames(1), (0, 250, 500, 750), [250, 750, 999])

    keys = asyncio.run(run())
    assert keys == {250: f"evidence/{'e' * 64}/250ms.jpg", 750: f"evidence/{'e' * 64}/750ms.jpg"}
    head = boto3_client("s3", stack.region, stack.endpoint_url).head_object(
        Bucket=stack.records_bucket, Key=keys[250])
    assert head["ServerSideEncryption"] == "aws:kms" and key_id in head["SSEKMSKeyId"]


def test_version_2_fields_round_trip_through_the_json():
    prints = fingerprint_frames(_frames(1), (0, 250, 500, 750))
    known = KnownContent([HashList("bad", 31, (HashEntry("e1", prints[1].pdq),))])
    job = Job("b", "k.mp4")
    block = known_content_block(job, v.VideoFacts("e", 10, 1.0, None, f"sha256:{HEX}"),
                                known.match(prints), prints, CTX, {"fingerprint": 0.4})
    block = dataclasses.replace(block, evidence_bucket="records", labels=tuple(
        dataclasses.replace(label, evidence_keys=("evidence/x/250ms.jpg",))
        for label in block.labels))
    body = v.to_json(block)
    v.validate(body)
    assert body["known_content"]["entry"] == "e1" and body["labels"][0]["stage"] == \
        "known_content"
    assert v.from_json(body) == block
    assert fingerprint_field(()) is None


def test_hash_lists_reload_on_their_interval_and_a_failed_reload_keeps_the_last(stack):
    from worker.aws import boto3_client
    from worker.hashlists import HashListStore

    s3 = boto3_client("s3", stack.region, stack.endpoint_url)

    def put(name: str, pdq: str) -> None:
        s3.put_object(Bucket=stack.records_bucket, Key=f"hashlists/{name}.json",
                      Body=HashList(name, 31, (HashEntry("e", pdq),)).to_json().encode())

    clock = [0.0]
    put("first", "0f" * 32)

    async def run():
        async with AsyncClients(stack.region, stack.endpoint_url) as aws:
            store = HashListStore(aws.s3, stack.records_bucket, "hashlists/", 60,
                                  clock=lambda: clock[0])
            seen = [[hl.name for hl in (await store.current()).lists]]
            put("second", "a" * 64)
            clock[0] = 59
            seen.append([hl.name for hl in (await store.current()).lists])
            clock[0] = 60
            seen.append([hl.name for hl in (await store.current()).lists])
            store.bucket = "no-such-bucket"  # the store fails: matching goes on with the last
            clock[0] = 120
            seen.append([hl.name for hl in (await store.current()).lists])
            return seen

    assert asyncio.run(run()) == [["first"], ["first"], ["first", "second"], ["first", "second"]]
