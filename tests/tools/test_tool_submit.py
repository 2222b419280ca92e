"""submit against the embedded stack: uploads (multipart when large) whose notifications enqueue."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest

from tools.ops.exceptions import InvalidRequest
from tools.ops.submit import plan_uploads
from worker.messages import parse_body

MIB = 1024 * 1024


def test_submit_uploads_videos_and_the_bucket_enqueues_them(stack, s3, queues, run_cli,
                                                            shared_media, tmp_path):
    queues.drain(stack.queue_url)  # the stack's s3:TestEvent
    big = tmp_path / "big clip.mp4"
    big.write_bytes(os.urandom(11 * MIB))  # three 5 MiB parts at the lowest threshold S3 allows
    videos = sorted(shared_media.iterdir())

    done = run_cli("submit", str(shared_media), str(big), "--bucket", stack.bucket,
                   "--prefix", "users/42", "--multipart-threshold-mib", "5",
                   "--part-size-mib", "5", "--json")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    expected = {f"users/42/{p.name}": p for p in [*videos, big]}
    assert {u["key"] for u in report["uploaded"]} == set(expected) and report["failed"] == []
    for key, path in expected.items():
        stored = s3.get_object(Bucket=stack.bucket, Key=key)
        assert stored["Body"].read() == path.read_bytes()
        assert stored["ContentType"].startswith("video/")
        # S3's SHA-256, the worker's verdict-cache key: the whole object's for a single PUT.
        upload = next(u for u in report["uploaded"] if u["key"] == key)
        if not upload["multipart"]:
            assert base64.b64decode(upload["checksum_sha256"]) == \
                hashlib.sha256(path.read_bytes()).digest()
    big_upload = next(u for u in report["uploaded"] if u["key"] == "users/42/big clip.mp4")
    assert big_upload["multipart"] and big_upload["etag"].endswith("-3")
    assert big_upload["checksum_sha256"]  # a composite of the parts' SHA-256s
    assert big_upload["version_id"]  # the stack's bucket is versioned
    # The worker's own parser reads the notifications: every upload became a job.  S3 delivers
    # notifications at least once (moto sends two for a multipart upload), hence a set.
    jobs = [job for m in queues.drain(stack.queue_url) for job in parse_body(m["Body"]).jobs]
    assert {job.key for job in jobs} == set(expected)


def test_plan_refuses_missing_paths_and_key_collisions(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "clip.mp4").write_bytes(b"x")
    (tmp_path / "a" / "notes.txt").write_text("not a video")
    assert [p.key for p in plan_uploads([tmp_path / "a"], "p/")] == ["p/clip.mp4"]
    with pytest.raises(InvalidRequest, match="same key"):
        plan_uploads([tmp_path / "a", tmp_path / "b"])
    with pytest.raises(InvalidRequest, match="no such file"):
        plan_uploads([tmp_path / "missing.mp4"])
