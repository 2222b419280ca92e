"""Known content and re-uploads end to end: `modfleet hashlist` and `modfleet worker` as processes
on the embedded stack (verdict table, records bucket), verdicts read back from the topic.

One worker run sees, in order: an original clip and a clip on a known-content list; then an exact
copy of the original (cache hit, no GET), a re-encode of it (near-duplicate reused: the policy
file below makes every verdict a ``review``) and a copy uploaded without a checksum (no exact
lookup; its SHA-256 is computed while fetching).  Subscribers with filter policies on the
``cache`` and ``known_content`` attributes receive only their verdicts.
"""

from __future__ import annotations

import hashlib
import json
import signal

import pytest

from model.api import ModelIdentity
from tools.lab.harness import (modfleet, read_verdicts, reuse_flags, start, wait_for_log,
                               worker_command)
from tools.lab.sample_videos import VideoSpec, transcode, write_video
from tools.ops.queues import queue_arn
from tools.ops.submit import plan_uploads, transfer_config, upload_all
from worker import verdict as verdicts
from worker.aws import boto3_client
from worker.decode import DecodeLimits, sample_frames
from worker.fingerprints import fingerprint_frames
from worker.verdict_cache import cache_key

pytestmark = pytest.mark.slow
FRAMES, SIZE = 4, 56  # the harness's FAST_MODEL sampling


def review_everything_policy(tmp_path):
    """The packaged policy with one category that reviews at any confidence: every model verdict
    is a ``review`` with a label, so evidence is written and near-duplicates are reused."""
    from importlib import resources

    policy = json.loads(resources.files("model").joinpath("policies/default.json").read_text())
    for category in policy["categories"]:
        category["block"] = 101  # never: the synthetic model's scores are arbitrary
    policy["categories"][0]["review"] = 0
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    return path


def subscribe(stack, name: str, filter_policy: dict) -> str:
    sqs = boto3_client("sqs", stack.region, stack.endpoint_url)
    url = sqs.create_queue(QueueName=f"{stack.queue_url.rsplit('/', 1)[1]}-{name}")["QueueUrl"]
    boto3_client("sns", stack.region, stack.endpoint_url).subscribe(
        TopicArn=stack.topic_arn, Protocol="sqs", Endpoint=queue_arn(sqs, url),
        Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps(filter_policy)})
    return url


def received_keys(stack, url: str) -> list[str]:
    sqs = boto3_client("sqs", stack.region, stack.endpoint_url)
    keys = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                          WaitTimeSeconds=1).get("Messages", []):
        keys += [json.loads(m["Body"])["video"]["key"] for m in messages]
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
    return sorted(keys)


def submit(stack, path, prefix: str) -> None:
    s3 = boto3_client("s3", stack.region, stack.endpoint_url)
    report = upload_all(s3, stack.bucket, plan_uploads([path], prefix), transfer_config())
    assert not report.failed and report.uploaded[0].checksum_sha256


def test_known_content_exact_copy_near_duplicate_and_evidence(stack, tmp_path):
    original = write_video(VideoSpec("original.mp4", width=96, height=64, seconds=1, fps=8,
                                     seed=1, scene="blocks"), tmp_path)
    known = write_video(VideoSpec("known.mp4", width=96, height=64, seconds=1, fps=8, seed=2,
                                  scene="blocks"), tmp_path)
    video = sample_frames(known, DecodeLimits(FRAMES, SIZE, 3600, 10**8))
    listed = fingerprint_frames(video.frames, video.timestamps_ms)[1]
    hashes = tmp_path / "list.txt"
    hashes.write_text(f"# exported for the test\n{listed.pdq} case-7\n{'0f' * 32} other\n")
    imported = start(modfleet("hashlist", "import", "test-list", str(hashes), "--json",
                              "--endpoint-url", stack.endpoint_url, "--region", stack.region,
                              "--records-bucket", stack.records_bucket))
    assert imported.wait(60) == 0, imported.stderr.read()
    assert json.loads(imported.stdout.read())["entries"] == 2

    hits = subscribe(stack, "hits", {"cache": ["exact", "near_duplicate"]})
    blocks = subscribe(stack, "known", {"known_content": ["true"]})
    submit(stack, original, "a")
    submit(stack, known, "k")
    worker = start(worker_command(stack, *reuse_flags(stack), "--policy-file",
                                  str(review_everything_policy(tmp_path))))
    try:
        wait_for_log(worker, "verdict")
        wait_for_log(worker, "verdict")
        copy = tmp_path / "copy" / "original.mp4"
        copy.parent.mkdir()
        copy.write_bytes(original.read_bytes())
        submit(stack, copy, "copy")
        submit(stack, transcode(original, tmp_path / "reencode.mp4", 144, 96, crf=40), "re")
        boto3_client("s3", stack.region, stack.endpoint_url).put_object(  # no checksum asked
            Bucket=stack.bucket, Key="plain/original.mp4", Body=original.read_bytes())
        for _ in range(3):
            wait_for_log(worker, "verdict")
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0

    got = {v["video"]["key"]: v for v in read_verdicts(stack, expect_at_least=5)}
    for verdict in got.values():
        verdict.pop("_attributes")
        verdicts.validate(verdict)
        assert verdict["schema"] == "modfleet.verdict/v2" and verdict["status"] == "ok"
        assert len(verdict["fingerprints"]["frames"]) == FRAMES
    first = got["a/original.mp4"]
    assert first["cache_hit"] is False and first["decision"] == "review"
    digest = hashlib.sha256(original.read_bytes()).hexdigest()
    assert first["video"]["sha256"] == f"sha256:{digest}"

    # Known content: blocked before the model, naming the list and entry, with its evidence.
    block = got["k/known.mp4"]
    assert block["decision"] == "block" and block["known_content"]["list"] == "test-list"
    assert block["known_content"]["entry"] == "case-7"
    assert [label["name"] for label in block["labels"]] == ["Known Content"]
    assert "infer" not in block["timings_ms"]

    # The exact copy: the cached verdict for the new key, no GET and no decode.
    hit = got["copy/original.mp4"]
    assert hit["cache_hit"] is True and hit["cached_from"] == {
        "kind": "exact", "idempotency_key": first["idempotency_key"],
        "processed_at": first["processed_at"]}
    assert hit["idempotency_key"] != first["idempotency_key"]
    assert {"fetch", "decode", "infer"}.isdisjoint(hit["timings_ms"])
    assert (hit["decision"], hit["labels"]) == (first["decision"], first["labels"])

    # The re-encode: a near-duplicate whose review is reused (review_block policy).
    near = got["re/reencode.mp4"]
    assert near["cached_from"]["kind"] == "near_duplicate" and near["near_duplicate"]["reused"]
    assert near["cached_from"]["idempotency_key"] == first["idempotency_key"]
    assert near["video"]["sha256"] != first["video"]["sha256"]

    # Uploaded without a checksum: no exact lookup (the fetched bytes were hashed), so it is
    # found as what its frames are, a near-duplicate of the original.
    plain = got["plain/original.mp4"]
    assert plain["video"]["sha256"] == f"sha256:{digest}"
    assert plain["cached_from"]["kind"] == "near_duplicate"

    # The table holds the model's verdict under S3's SHA-256, model and policy version.
    item = boto3_client("dynamodb", stack.region, stack.endpoint_url).get_item(
        TableName=stack.verdict_table,
        Key={"pk": {"S": cache_key(first["video"]["sha256"],
                                   ModelIdentity(**first["model"]))}})["Item"]
    assert json.loads(item["verdict"]["S"])["idempotency_key"] == first["idempotency_key"]
    assert int(item["expires_at"]["N"]) > 0

    # Evidence: every label's frames are JPEGs in the records bucket, keyed in the verdict.
    s3 = boto3_client("s3", stack.region, stack.endpoint_url)
    for verdict in (first, block):
        assert verdict["evidence_bucket"] == stack.records_bucket
        for label in verdict["labels"]:
            assert len(label["evidence_keys"]) == len(label["timestamps_ms"])
            for key in label["evidence_keys"]:
                assert key.startswith("evidence/")
                body = s3.get_object(Bucket=stack.records_bucket, Key=key)["Body"].read()
                assert body[:2] == b"\xff\xd8"  # JPEG
    assert hit["labels"][0]["evidence_keys"] == first["labels"][0]["evidence_keys"]

    # Filter policies on the new attributes: each subscriber got only its verdicts.
    assert received_keys(stack, hits) == ["copy/original.mp4", "plain/original.mp4",
                                          "re/reencode.mp4"]
    assert received_keys(stack, blocks) == ["k/known.mp4"]
