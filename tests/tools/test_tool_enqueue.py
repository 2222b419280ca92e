"""enqueue against the embedded stack: direct jobs from flags, a file, a prefix; batch failures."""

from __future__ import annotations

import json

from tools.ops.enqueue import enqueue_jobs
from worker.messages import parse_body


def jobs_in(queues, queue_url):
    return [job for m in queues.drain(queue_url) for job in parse_body(m["Body"]).jobs]


def test_enqueue_keys_and_keys_from_file(stack, queues, run_cli, tmp_path):
    queues.drain(stack.queue_url)
    done = run_cli("enqueue", "--queue-url", stack.queue_url, "--bucket", stack.bucket,
                   "--key", "users/1/a b.mp4", "--key", "users/1/c+d.mp4", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sent"] == 2
    assert sorted(j.key for j in jobs_in(queues, stack.queue_url)) == ["users/1/a b.mp4",
                                                                        "users/1/c+d.mp4"]
    keys = [f"backfill/{i:03d}.mp4" for i in range(25)]
    listing = tmp_path / "keys.txt"
    listing.write_text("# last week's failures\n" + "\n".join(keys[:12]) + "\n\n"
                       + "\n".join(keys[12:]) + "\n")

    done = run_cli("enqueue", "--queue-url", stack.queue_url, "--bucket", stack.bucket,
                   "--keys-from", str(listing), "--json")

    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["sent"] == 25 and report["failed"] == []
    jobs = jobs_in(queues, stack.queue_url)
    assert sorted(j.key for j in jobs) == keys and {j.bucket for j in jobs} == {stack.bucket}


def test_enqueue_prefix_lists_the_bucket(stack, sqs, s3, queues, run_cli):
    name = stack.queue_url.rsplit("/", 1)[-1] + "-backfill"
    target = sqs.create_queue(QueueName=name)["QueueUrl"]
    wanted = [f"old/{i:02d}.mp4" for i in range(13)]
    for key in [*wanted, "new/x.mp4"]:
        s3.put_object(Bucket=stack.bucket, Key=key, Body=b"v")

    done = run_cli("enqueue", "--queue-url", target, "--bucket", stack.bucket, "--prefix", "old/")

    assert done.returncode == 0 and "sent 13 of 13" in done.stdout
    assert sorted(j.key for j in jobs_in(queues, target)) == wanted
    missing = run_cli("enqueue", "--queue-url", target, "--bucket", "no-such-bucket",
                      "--prefix", "old/")
    assert missing.returncode == 2 and "NoSuchBucket" in missing.stderr


class FlakyBatches:
    """The real SQS client, but SendMessageBatch fails entries the way SQS can and moto cannot:
    the first call fails one entry transiently (retried) and one for good (SenderFault)."""

    def __init__(self, sqs):
        self.sqs, self.calls = sqs, []

    def send_message_batch(self, QueueUrl, Entries):
        self.calls.append([e["Id"] for e in Entries])
        first = len(self.calls) == 1
        flaky = [e for e in Entries if first and e["Id"] in {"j3", "j7"}]
        sent = self.sqs.send_message_batch(
            QueueUrl=QueueUrl, Entries=[e for e in Entries if e not in flaky])
        sent.setdefault("Failed", []).extend(
            {"Id": e["Id"], "SenderFault": e["Id"] == "j7",
             "Code": "InvalidParameterValue" if e["Id"] == "j7" else "InternalError",
             "Message": "injected"} for e in flaky)
        return sent


def test_partial_batch_failures_are_retried_or_reported(stack, sqs, queues):
    queues.drain(stack.queue_url)
    flaky = FlakyBatches(sqs)
    keys = [f"k/{i}.mp4" for i in range(12)]

    report = enqueue_jobs(flaky, stack.queue_url, stack.bucket, keys)

    assert report.sent == 11
    assert [(f.key, f.code) for f in report.failed] == [("k/7.mp4", "InvalidParameterValue")]
    assert flaky.calls[1] == ["j3"]  # only the transient failure was sent again
    assert sorted(j.key for j in jobs_in(queues, stack.queue_url)) == sorted(
        k for k in keys if k != "k/7.mp4")


def test_fifo_backfill_rerun_is_deduplicated(stack, sqs, queues):
    fifo = sqs.create_queue(QueueName=stack.queue_url.rsplit("/", 1)[-1] + "-b.fifo",
                            Attributes={"FifoQueue": "true"})["QueueUrl"]
    keys = ["a.mp4", "b.mp4", "a.mp4"]
    assert enqueue_jobs(sqs, fifo, stack.bucket, keys).sent == 3
    assert enqueue_jobs(sqs, fifo, stack.bucket, keys).sent == 3  # accepted, but deduplicated
    assert sorted(j.key for j in jobs_in(queues, fifo)) == ["a.mp4", "b.mp4"]
