"""The worker end to end: `modfleet local-stack` and `modfleet worker` as separate processes.

Every accepted message format, every error outcome and the poison path in one run, with the real
sample videos of ../shared/media among the inputs; each verdict is read back from the tap queue
subscribed to the verdict topic and validated against the shipped schema.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tools.lab.harness import (modfleet, queue_depth, read_verdicts, send, start, upload,
                           worker_command)
from tools.lab.sample_videos import make_undecodable
from worker import verdict as verdicts
from worker.aws import boto3_client
from tools.lab.embedded_aws import StackInfo
from tools.lab.sample_videos import VideoSpec, write_video

pytestmark = pytest.mark.slow


@pytest.fixture()
def local_stack_process():
    process = start(modfleet("local-stack", "--json", "--name", "e2e"))
    try:
        line = process.stdout.readline()
        assert line, process.stderr.read()
        yield StackInfo(**json.loads(line))
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_every_format_and_outcome_settles(local_stack_process, shared_media, tmp_path):
    stack = local_stack_process
    long_clip = write_video(VideoSpec("long.mp4", width=64, height=64, seconds=12, fps=2), tmp_path)
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    # S3 notifications (the bucket is wired to the queue); keys with spaces and a plus sign.
    uploads = {
        "real/h265 clip+1.mp4": shared_media / "h265_video.mp4",       # ok
        "real/bt2020 10bit.mp4": shared_media / "bt2020_10bit.mp4",   # ok, 10-bit HEVC
        "real/nasa.mp4": shared_media / "nasa_13013.mp4",             # too_large (cap below)
        "real/av1.mkv": shared_media / "av1_video.mkv",               # too_many_pixels
        "gen/long.mp4": long_clip,                                    # too_long
        "gen/notes.mp4": notes,                                       # not_a_video
        "gen/broken.mp4": make_undecodable(tmp_path),                 # undecodable
    }
    for key, path in uploads.items():
        upload(stack, path, key)
    # A size cap between the largest other upload and the NASA clip (real or stand-in).
    others = max(p.stat().st_size for k, p in uploads.items() if k != "real/nasa.mp4")
    assert uploads["real/nasa.mp4"].stat().st_size > others
    cap = (others + uploads["real/nasa.mp4"].stat().st_size) // 2
    s3 = boto3_client("s3", stack.region, stack.endpoint_url)
    version = s3.head_object(Bucket=stack.bucket, Key="real/h265 clip+1.mp4")["VersionId"]
    s3_record = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {
        "bucket": {"name": stack.bucket}, "object": {"key": "real/h265+clip%2B1.mp4"}}}]}
    send(stack, {"Type": "Notification", "Message": json.dumps(s3_record)})   # SNS envelope
    send(stack, {"source": "aws.s3", "detail-type": "Object Created", "detail": {
        "bucket": {"name": stack.bucket}, "object": {"key": "real/bt2020 10bit.mp4"}}})
    send(stack, {"bucket": stack.bucket, "key": "real/h265 clip+1.mp4", "version_id": version})
    send(stack, {"bucket": stack.bucket, "key": "gone/missing.mp4"})          # object_missing
    send(stack, {"Service": "Amazon S3", "Event": "s3:TestEvent"})           # acknowledged
    send(stack, "{this is not json")                                         # poison

    worker = subprocess.run(
        worker_command(stack, "--max-object-bytes", str(cap), "--max-pixels", str(320 * 240),
                       "--max-duration-s", "10", "--replicas", "2", "--exit-when-idle", "4"),
        capture_output=True, text=True, timeout=240)
    assert worker.returncode == 0, worker.stderr[-3000:]

    got = read_verdicts(stack, expect_at_least=11)
    for verdict in got:
        attributes = verdict.pop("_attributes")
        verdicts.validate(verdict)
        typed = verdicts.message_attributes(verdicts.from_json(verdict))
        assert attributes == {name: a["StringValue"] for name, a in typed.items()}
        assert (attributes["cache"], attributes["known_content"]) == ("none", "false")
    by_key: dict[str, list[dict]] = {}
    for verdict in got:
        by_key.setdefault(verdict["video"]["key"], []).append(verdict)
    codes = {key: sorted(v["error"]["code"] if v["error"] else "ok" for v in vs)
             for key, vs in by_key.items()}
    assert codes == {
        "real/h265 clip+1.mp4": ["ok", "ok", "ok"],  # S3 event, SNS envelope, direct with version
        "real/bt2020 10bit.mp4": ["ok", "ok"],       # S3 event, EventBridge
        "real/nasa.mp4": ["too_large"], "real/av1.mkv": ["too_many_pixels"],
        "gen/long.mp4": ["too_long"], "gen/notes.mp4": ["not_a_video"],
        "gen/broken.mp4": ["undecodable"], "gone/missing.mp4": ["object_missing"],
    }
    for verdict in got:
        assert verdict["model"]["synthetic"] is True
        if verdict["status"] == "error":
            assert verdict["decision"] == "review" and verdict["labels"] == []
        else:
            assert verdict["video"]["duration_s"] > 0 and verdict["timings_ms"]["infer"] > 0
    # Same object version and model: the same idempotency key whichever message named it.
    assert len({v["idempotency_key"] for v in by_key["real/h265 clip+1.mp4"]}) == 1

    assert queue_depth(stack) == 0
    sqs = boto3_client("sqs", stack.region, stack.endpoint_url)
    dead = sqs.receive_message(QueueUrl=stack.dlq_url, MessageAttributeNames=["All"],
                               MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in dead] == ["{this is not json"]
    assert dead[0]["MessageAttributes"]["modfleet.error_code"]["StringValue"] == "poison_body"
    assert "not JSON" in dead[0]["MessageAttributes"]["modfleet.reason"]["StringValue"]
    log_events = [json.loads(line) for line in worker.stderr.splitlines() if line.startswith("{")]
    assert any(e["event"] == "acknowledged s3:TestEvent" for e in log_events)
    verdict_logs = [e for e in log_events if e["event"] == "verdict"]
    assert len(verdict_logs) == len(got)
    assert all({"message_id", "bucket", "key", "timings_ms"} <= set(e) for e in verdict_logs)


def test_demo_prints_a_verdict_for_every_sample(tmp_path):
    clip = tmp_path / "extra clip.mp4"
    shutil.copy(write_video(VideoSpec("x.mp4", seconds=1), tmp_path), clip)
    result = subprocess.run(modfleet("demo", "--json", "--frames-per-video", "4",
                                     "--frame-size", "56", str(clip)),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    keys = {v["video"]["key"] for v in lines}
    assert "demo/extra clip.mp4" in keys and "demo/street-scene.mp4" in keys
    assert len(lines) == 8  # 5 generated clips, 1 text file, the extra clip, 1 missing object
    for verdict in lines:
        verdicts.validate(verdict)
