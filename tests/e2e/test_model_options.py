"""The worker with each mode, batch size, quantization and replica count, on the embedded stack.

In process (the subprocess path is covered by test_worker_e2e): real S3 notifications, the real
run loop and replica threads, the synthetic tiny checkpoint, verdicts read back from the tap queue.
"""

from __future__ import annotations

import pytest

from tools.lab.harness import queue_depth, read_verdicts, serve_until_idle, upload
from worker import verdict as verdicts
from worker.replicas import ReplicaPool
from tools.lab.sample_videos import VideoSpec, write_video
from worker.settings import Settings

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("mode, batch_size, quantize, replicas", [
    ("score", 1, "none", 1),
    ("score", 4, "int8", 2),
    ("generate", 2, "none", 2),
    ("generate", 3, "int8", 1),
])
def test_worker_end_to_end_with_model_options(stack, tmp_path, mode, batch_size, quantize,
                                              replicas):
    keys = set()
    for i in range(5):  # 5 videos: batches of 2, 3 and 4 end with a padded partial batch
        path = write_video(VideoSpec(f"v{i}.mp4", width=64, height=48, seconds=1, fps=6, seed=i),
                           tmp_path)
        upload(stack, path, f"opts/{i}.mp4")
        keys.add(f"opts/{i}.mp4")
    settings = Settings().for_stack(stack).with_changes(
        wait_time_s=1, exit_when_idle_s=3, frames_per_video=2,
        frame_size=56, batch_size=batch_size, batch_wait_ms=300, replicas=replicas,
        quantize=quantize, mode=mode, max_new_tokens=12, metrics=False)
    batches = []
    stats = serve_until_idle(settings, ReplicaPool(settings, on_batch=batches.append))
    assert stats.messages["settled"] == len(keys)
    got = read_verdicts(stack, expect_at_least=len(keys))
    assert {v["video"]["key"] for v in got} == keys and len(got) == len(keys)
    for verdict in got:
        verdict.pop("_attributes")
        verdicts.validate(verdict)
        assert verdict["status"] == "ok"
        assert verdict["model"]["quantization"] == quantize
        assert all(label["stage"] == "llm" for label in verdict["labels"])
        if mode == "generate" and verdict["decision"] == "review" and not verdict["labels"]:
            assert verdict["reason"]  # unparseable synthetic text routes to review, with why
    assert {b.replica for b in batches} <= set(range(replicas))
    assert all(b.batch_size == batch_size and 1 <= b.real_rows <= batch_size for b in batches)
    assert queue_depth(stack) == 0
