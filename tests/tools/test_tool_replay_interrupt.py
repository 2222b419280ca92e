"""replay-dlq stopped by SIGTERM or Ctrl-C, and beyond --max-held: every letter accounted for,
nothing left held, nothing lost; a dry run changes nothing at any size."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter

import pytest

from tools.lab.chaos.fault_proxy import FaultProxy
from tools.lab.harness import ROOT, modfleet
from tools.lab.letters import Letter, cli_env, letter, letter_id
from tools.ops.dead_letters import DeadLetter, Selector
from tools.ops.dlq_delete import Deleter
from tools.ops.dlq_scan import ScanPlan
from tools.ops.replay import ReplayPlan, replay
from worker.aws import boto3_client


def fill(queues, stack, n: int, start: int = 0) -> list[Letter]:
    queues.drain(stack.queue_url)  # S3's s3:TestEvent from the stack's set-up: start empty
    letters = [letter(i, stack.bucket) for i in range(start, start + n)]
    queues.dead_letter(stack.dlq_url, letters, stack.queue_url)
    return letters


def depth(sqs, queue_url: str) -> dict[str, int]:
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    return {"visible": int(attrs["ApproximateNumberOfMessages"]),
            "in_flight": int(attrs["ApproximateNumberOfMessagesNotVisible"]),
            "delayed": int(attrs["ApproximateNumberOfMessagesDelayed"])}


def release(sqs, queue_url: str, messages: list[dict]) -> None:
    """Make messages a test drained without deleting visible again."""
    for start in range(0, len(messages), 10):
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for n, m in enumerate(messages[start:start + 10])])


def wait_until(condition, process=None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process ended early: {process.stderr.read()[-2000:]}")
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def interrupted_replay(stack, sqs, sig: int, moved_at_least: int, *args: str):
    """Start a rate-limited replay, send ``sig`` once ``moved_at_least`` letters are in the
    source queue, and return (exit code, stdout, stderr)."""
    process = subprocess.Popen(modfleet("replay-dlq", "--dlq-url", stack.dlq_url, "--force",
                                        *args), env=cli_env(stack), cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: depth(sqs, stack.queue_url)["visible"] >= moved_at_least, process)
        process.send_signal(sig)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    return process.returncode, out, err


def test_sigterm_mid_replay_of_1000_the_account_and_the_queues_agree(stack, sqs, queues):
    letters = fill(queues, stack, 1000)

    code, out, err = interrupted_replay(stack, sqs, signal.SIGTERM, 200, "--rate", "200",
                                        "--json")

    assert code == 143, err[-2000:]
    report = json.loads(out)
    assert (report["interrupted"], report["exit_code"], report["aborted"]) == ("SIGTERM", 143, None)
    moved = report["moved"]
    assert 200 <= moved < 1000  # really stopped half-way
    # Nothing left held, and the queues hold what the account says.
    assert depth(sqs, stack.dlq_url) == {"visible": 1000 - moved, "in_flight": 0, "delayed": 0}
    assert depth(sqs, stack.queue_url) == {"visible": moved, "in_flight": 0, "delayed": 0}
    assert (report["dlq_before"], report["dlq_after"]) == (1000, 1000 - moved)
    assert report["failed"] == report["duplicated"] == report["skipped"] == 0
    assert report["released"] == report["scanned"] - moved  # each letter it held, released
    assert report["unseen"] is None  # it did not finish, so it does not guess
    # Nothing lost, nothing twice.
    in_queue, in_dlq = queues.ids(stack.queue_url), queues.ids(stack.dlq_url)
    assert set(in_queue) | set(in_dlq) == {x.id for x in letters}
    assert not set(in_queue) & set(in_dlq)
    assert set(in_queue.values()) == set(in_dlq.values()) == {1}


def test_ctrl_c_prints_the_account_and_exits_130(stack, sqs, queues):
    fill(queues, stack, 60)

    code, out, err = interrupted_replay(stack, sqs, signal.SIGINT, 10, "--rate", "10")

    assert code == 130
    summary = out.strip().splitlines()[-1]
    moved = depth(sqs, stack.queue_url)["visible"]
    assert summary.startswith(f"moved {moved}, skipped 0, released ") and "failed 0" in summary
    assert "INTERRUPTED by SIGINT" in err
    assert depth(sqs, stack.dlq_url) == {"visible": 60 - moved, "in_flight": 0, "delayed": 0}


def test_dry_run_beyond_max_held_changes_nothing_and_says_what_it_did_not_see(
        stack, sqs, queues, run_cli):
    letters = fill(queues, stack, 60)

    done = run_cli("replay-dlq", "--dlq-url", stack.dlq_url, "--dry-run", "--force",
                   "--max-held", "20", "--json")

    assert done.returncode == 1, done.stderr  # done in part: 40 letters not seen
    report = json.loads(done.stdout)
    assert (report["scanned"], len(report["candidates"]), report["unseen"]) == (20, 20, 40)
    assert report["rotated"] == 0 and report["released"] == 20
    assert depth(sqs, stack.dlq_url) == {"visible": 60, "in_flight": 0, "delayed": 0}
    left = queues.drain(stack.dlq_url, delete=False)
    assert Counter(letter_id(m["Body"]) for m in left) == Counter(x.id for x in letters)
    assert {c["message_id"] for c in report["candidates"]} <= {m["MessageId"] for m in left}
    assert not any("modfleet.first_sent_at" in m["MessageAttributes"] for m in left)
    release(sqs, stack.dlq_url, left)

    text = run_cli("replay-dlq", "--dlq-url", stack.dlq_url, "--dry-run", "--max-held", "20")
    assert text.returncode == 1 and "NOT SEEN: 40 letters" in text.stderr


def test_replay_reports_the_letters_it_could_not_see_and_exits_1(stack, sqs, queues, run_cli):
    fill(queues, stack, 30)
    # Ten held by another reader, five delayed (as an earlier scan's rotation leaves them).
    held = sqs.receive_message(QueueUrl=stack.dlq_url, MaxNumberOfMessages=10,
                               VisibilityTimeout=600)["Messages"]
    for item in [letter(i, stack.bucket) for i in range(100, 105)]:
        sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=item.body, DelaySeconds=900)

    done = run_cli("replay-dlq", "--dlq-url", stack.dlq_url, "--force", "--json")

    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert (report["moved"], report["unseen"], report["exit_code"]) == (20, 15, 1)
    assert (report["dlq_before"], report["dlq_after"]) == (35, 15)
    assert len(held) == 10 and depth(sqs, stack.queue_url)["visible"] == 20


def test_a_rotated_letter_keeps_its_original_age(stack, sqs, queues):
    fill(queues, stack, 30)
    originals = queues.drain(stack.dlq_url, delete=False)
    sent_ms = {letter_id(m["Body"]): int(m["Attributes"]["SentTimestamp"]) for m in originals}
    release(sqs, stack.dlq_url, originals)

    # Nothing matches, and only 10 may be held: 20 are rotated to the DLQ's back for 1 s.
    rotating = replay(sqs, ReplayPlan(stack.dlq_url, stack.queue_url,
                                      Selector.build(match="^nothing/"), max_held=10, hold_s=1))
    assert (rotating.rotated, rotating.moved, rotating.unseen, rotating.exit_code) == (20, 0, 0, 0)
    wait_until(lambda: depth(sqs, stack.dlq_url)["visible"] == 30)

    copies = queues.drain(stack.dlq_url, delete=False)
    rotated = [m for m in copies if "modfleet.first_sent_at" in m["MessageAttributes"]]
    assert len(rotated) == 20
    for message in copies:
        assert DeadLetter.from_sqs(message).sent_at_s * 1000 == sent_ms[letter_id(message["Body"])]
    release(sqs, stack.dlq_url, copies)

    # An hour after the last original was sent, every letter is an hour old: rotated or not.
    an_hour_later = max(sent_ms.values()) / 1000 + 3600
    aged = replay(sqs, ReplayPlan(stack.dlq_url, stack.queue_url, Selector.build(older_than="1h"),
                                  force=True), clock=lambda: an_hour_later)
    assert (aged.moved, aged.skipped) == (30, 0)


def test_after_a_rotating_replay_the_next_one_reports_the_delayed_letters_until_they_are_back(
        stack, sqs, queues, run_cli):
    # The case, small: a DLQ three times --max-held; the first replay rotates what it
    # cannot hold to the DLQ's back (delayed by --hold), so a second one right after cannot see
    # those letters. It says how many and exits 1, until they are visible again.
    letters = fill(queues, stack, 60)
    hot = {x.id for x in letters if x.key and x.key.startswith("hot/")}
    cold = {x.id for x in letters if x.key and x.key.startswith("cold/")}
    args = ("replay-dlq", "--dlq-url", stack.dlq_url, "--max-held", "10", "--hold", "3s", "--json")

    first = run_cli(*args, "--match", "^hot/")
    report = json.loads(first.stdout)
    assert first.returncode == 0, first.stderr
    assert (report["moved"], report["unseen"]) == (len(hot), 0) and report["rotated"] > 0

    second = run_cli(*args, "--match", "^cold/")
    again = json.loads(second.stdout)
    assert second.returncode == 1 and again["unseen"] > 0, second.stderr
    assert again["moved"] + again["unseen"] + again["skipped"] == 60 - len(hot)

    wait_until(lambda: depth(sqs, stack.dlq_url) == {
        "visible": 60 - len(hot) - again["moved"], "in_flight": 0, "delayed": 0})
    third = run_cli(*args, "--match", "^cold/")
    last = json.loads(third.stdout)
    assert third.returncode == 0 and last["unseen"] == 0, third.stderr
    assert queues.ids(stack.queue_url) == Counter(hot | cold)  # each once, none lost


@pytest.mark.parametrize("action", ["replay", "delete"])
def test_deletes_failing_after_retries_abort_with_3_and_lose_nothing(stack, sqs, queues, action):
    # The lab's fault proxy fails every DeleteMessageBatch (HTTP 500), as an SQS outage would;
    # moto itself never fails one.
    letters = fill(queues, stack, 20)
    with FaultProxy(stack.endpoint_url, kinds=[]) as proxy:
        proxy.outage("sqs:DeleteMessageBatch")
        faulty = boto3_client("sqs", stack.region, proxy.url, max_attempts=2)
        if action == "replay":
            report = replay(faulty, ReplayPlan(stack.dlq_url, stack.queue_url, force=True,
                                               hold_s=300))
        else:
            report = Deleter(faulty, ScanPlan(stack.dlq_url, hold_s=300)).run()

    assert report.exit_code == 3 and "delete_message_batch" in report.aborted
    assert report.done == 0 if action == "delete" else report.duplicated == 10
    assert report.failed == (10 if action == "delete" else 0)
    assert report.released == 10  # the ten it could not delete are not left hidden
    assert depth(sqs, stack.dlq_url) == {"visible": 20, "in_flight": 0, "delayed": 0}
    assert set(queues.ids(stack.dlq_url)) == {x.id for x in letters}  # all still there
