"""replay-dlq against the embedded stack: 1,000 dead letters, filters, dry run, crash and re-run."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter

import pytest
from botocore.stub import Stubber

from tools.lab.letters import Letter, cli_env, letter, letter_id
from tools.lab.harness import ROOT, modfleet
from tools.ops.dead_letters import Selector
from tools.ops.exceptions import InvalidRequest, UnsupportedByEndpoint
from tools.ops.native_move import start_native_move
from tools.ops.replay import ReplayPlan, replay
from worker.aws import boto3_client

N_LETTERS = 1000


def fill(queues, stack, n: int = N_LETTERS) -> list[Letter]:
    queues.drain(stack.queue_url)  # S3's s3:TestEvent from the stack's set-up: start empty
    letters = [letter(i, stack.bucket) for i in range(n)]
    queues.dead_letter(stack.dlq_url, letters, stack.queue_url)
    return letters


def test_filtered_replay_of_1000_moves_exactly_the_matching_ones(stack, sqs, queues):
    letters = fill(queues, stack)
    hot = {x.id for x in letters if x.key and x.key.startswith("hot/")}
    assert 0 < len(hot) < N_LETTERS  # the filter has both kinds to tell apart

    report = replay(sqs, ReplayPlan(stack.dlq_url, stack.queue_url, Selector.build(match="^hot/")))

    assert (report.moved, report.failed, report.duplicated) == (len(hot), 0, 0)
    assert report.scanned == N_LETTERS and report.skipped == N_LETTERS - len(hot)
    moved = queues.drain(stack.queue_url, delete=False)
    assert Counter(letter_id(m["Body"]) for m in moved) == Counter(hot)  # each once, no others
    originals = {x.id: x for x in letters}
    for message in moved:
        original = originals[letter_id(message["Body"])]
        assert message["Body"] == original.body
        attrs = message["MessageAttributes"]
        assert attrs["modfleet.replay_count"] == {"StringValue": "1", "DataType": "Number"}
        assert attrs["test.origin"]["StringValue"] == "fixture"
        assert attrs.get("modfleet.error_code", {}).get("StringValue") == original.error_code
    assert set(queues.ids(stack.dlq_url)) == {x.id for x in letters} - hot  # released, visible


def test_dry_run_of_1000_lists_the_matching_ones_and_changes_nothing(stack, queues, run_cli):
    letters = fill(queues, stack)
    expected = {x.id for x in letters if x.key and "/id-" in x.key and x.error_code is None}

    done = run_cli("replay-dlq", "--dlq-url", stack.dlq_url, "--match", r"/id-\d+ clip",
                   "--error-code", "redrive", "--dry-run", "--json")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dry_run"] and report["moved"] == 0
    assert {letter_id(c["keys"][0]) for c in report["candidates"]} == expected
    assert all(c["error_code"] == "redrive" for c in report["candidates"])
    assert report["destination_url"] == stack.queue_url  # found through the redrive policy
    assert queues.depth(stack.queue_url) == {"visible": 0, "in_flight": 0}
    assert queues.depth(stack.dlq_url) == {"visible": N_LETTERS, "in_flight": 0}  # all released
    left = {letter_id(m["Body"]): m for m in queues.drain(stack.dlq_url, delete=False)}
    assert set(left) == {x.id for x in letters}
    assert all("modfleet.replay_count" not in m["MessageAttributes"] for m in left.values())
    assert all(left[x.id]["Body"] == x.body for x in letters)


def test_replay_killed_halfway_then_rerun_loses_nothing(stack, queues):
    fill(queues, stack)
    everything = {f"id-{i:05d}" for i in range(N_LETTERS)}
    # A low rate so that the kill lands mid-way; a short hold so that what the killed run held
    # becomes visible again soon (as it would after --hold on a real crash).
    args = ("replay-dlq", "--dlq-url", stack.dlq_url, "--rate", "100", "--hold", "3s", "--json")
    first = subprocess.Popen(modfleet(*args), env=cli_env(stack), cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_until(lambda: queues.depth(stack.queue_url)["visible"] >= 200, first)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    in_source = queues.depth(stack.queue_url)["visible"]
    assert 200 <= in_source < N_LETTERS  # really killed half-way
    _wait_until(lambda: queues.depth(stack.dlq_url)["in_flight"] == 0)

    second = subprocess.run(modfleet(*args[:-5], "--json"), env=cli_env(stack), cwd=ROOT,
                            capture_output=True, text=True, timeout=120)

    assert second.returncode == 0, second.stderr
    # Plus the batch sent but not deleted when the kill came, if it fell there (back in the DLQ).
    assert 0 <= json.loads(second.stdout)["moved"] - (N_LETTERS - in_source) <= 10
    in_queue, in_dlq = queues.ids(stack.queue_url), queues.ids(stack.dlq_url)
    assert set(in_queue) | set(in_dlq) == everything  # none lost
    assert not in_dlq  # everything moved on the second run
    assert sum(in_queue.values()) - len(in_queue) <= 10  # at worst the batch in flight, twice


def test_error_code_max_and_age_filters(stack, sqs, queues):
    letters = fill(queues, stack, 40)
    redriven = {x.id for x in letters if x.error_code is None}

    by_code = replay(sqs, ReplayPlan(stack.dlq_url, stack.queue_url,
                                     Selector.build(error_code="redrive"), hold_s=30))
    assert set(queues.ids(stack.queue_url)) == redriven and by_code.moved == len(redriven)

    young = replay(sqs, ReplayPlan(stack.dlq_url, stack.queue_url,
                                   Selector.build(older_than="1h"), hold_s=30))
    assert young.moved == 0 and young.skipped == 40 - len(redriven)

    later = time.time() + 7200  # an injected clock: the same letters two hours from now
    capped = replay(sqs, ReplayPlan(stack.dlq_url, stack.queue_url,
                                    Selector.build(older_than="1h"), limit=7, hold_s=30),
                    clock=lambda: later)
    assert capped.moved == 7 and len(queues.ids(stack.queue_url)) == 7
    assert queues.depth(stack.dlq_url)["visible"] == 40 - len(redriven) - 7


def test_rate_spaces_the_sends(stack, sqs, queues):
    fill(queues, stack, 30)
    sleeps: list[float] = []
    report = replay(sqs, ReplayPlan(stack.dlq_url, stack.queue_url, rate=10, hold_s=30),
                    monotonic=lambda: 100.0, sleep=sleeps.append)
    assert report.moved == 30
    assert sleeps == [1.0, 2.0]  # 10 at once, then due at +1 s and +2 s (a frozen clock)


def test_fifo_keeps_the_group_and_gets_a_fresh_deduplication_id(stack, sqs, queues):
    dlq = sqs.create_queue(QueueName=f"{stack.bucket[:20]}-dlq.fifo",
                           Attributes={"FifoQueue": "true"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    source = sqs.create_queue(QueueName=f"{stack.bucket[:20]}-jobs.fifo", Attributes={
        "FifoQueue": "true", "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn["QueueArn"], "maxReceiveCount": "3"})})["QueueUrl"]
    for i in range(6):
        sqs.send_message(QueueUrl=dlq, MessageBody=letter(i * 5 + 3, stack.bucket).body,
                         MessageGroupId=f"g{i % 2}", MessageDeduplicationId=f"orig-{i}")

    report = replay(sqs, ReplayPlan(dlq, source, hold_s=30))  # destination given, as --to does

    assert report.moved == 6
    moved = queues.drain(source)
    assert sorted(m["Attributes"]["MessageGroupId"] for m in moved) == ["g0"] * 3 + ["g1"] * 3
    assert not any(m["Attributes"]["MessageDeduplicationId"].startswith("orig-") for m in moved)


def test_invalid_requests_are_refused_before_anything_moves(stack, queues, run_cli):
    fill(queues, stack, 5)
    with pytest.raises(InvalidRequest):
        Selector.build(match="(unclosed")
    with pytest.raises(InvalidRequest):
        ReplayPlan(stack.dlq_url, stack.dlq_url)
    done = run_cli("replay-dlq", "--dlq-url", stack.dlq_url, "--native", "--match", "x")
    assert done.returncode == 2 and "--native" in done.stderr
    assert queues.depth(stack.dlq_url)["visible"] == 5


def test_native_is_refused_clearly_by_the_embedded_stack(stack, queues, run_cli):
    fill(queues, stack, 5)
    done = run_cli("replay-dlq", "--dlq-url", stack.dlq_url, "--native", "--rate", "50")
    assert done.returncode == 2
    assert "does not support StartMessageMoveTask" in done.stderr
    assert "without --native" in done.stderr
    assert queues.depth(stack.dlq_url)["visible"] == 5


def test_native_start_parameters(stack, sqs):
    # Stubbed: moto cannot accept StartMessageMoveTask, so only the request we build is checked.
    stubber = Stubber(sqs)
    for url in (stack.dlq_url, stack.queue_url):
        stubber.add_response("get_queue_attributes",
                             {"Attributes": {"QueueArn": f"arn:aws:sqs:us-east-1:1:{url[-8:]}"}})
    stubber.add_response("start_message_move_task", {"TaskHandle": "task-1"}, {
        "SourceArn": f"arn:aws:sqs:us-east-1:1:{stack.dlq_url[-8:]}",
        "DestinationArn": f"arn:aws:sqs:us-east-1:1:{stack.queue_url[-8:]}",
        "MaxNumberOfMessagesPerSecond": 500})
    with stubber:
        move = start_native_move(sqs, stack.dlq_url, stack.queue_url, rate=9000)
    assert move.as_dict()["task_handle"] == "task-1" and move.rate == 500
    stubber.assert_no_pending_responses()


def test_native_refusal_is_typed(stack):
    # One attempt: the refusal is an HTTP 500 that the default client would retry for seconds.
    sqs = boto3_client("sqs", stack.region, stack.endpoint_url, max_attempts=1)
    with pytest.raises(UnsupportedByEndpoint, match="StartMessageMoveTask"):
        start_native_move(sqs, stack.dlq_url, None, None)


def _wait_until(condition, process=None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process ended early: {process.stderr.read().decode()[-2000:]}")
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_failing_destination_aborts_deletes_nothing_and_releases_everything(stack, sqs, queues):
    letters = fill(queues, stack, 20)
    report = replay(sqs, ReplayPlan(stack.dlq_url, stack.queue_url + "-gone", hold_s=300))
    assert report.aborted and "send_message_batch" in report.aborted and not report.ok
    assert report.moved == 0 and report.failed == 10  # the one batch tried, then stopped
    assert report.released == 10  # nothing left invisible for --hold's 300 s
    assert queues.depth(stack.dlq_url) == {"visible": 20, "in_flight": 0}
    assert set(queues.ids(stack.dlq_url)) == {x.id for x in letters}


def test_replay_of_a_dlq_three_times_its_held_cap_moves_each_match_once(stack, queues, run_cli):
    # SQS keeps at most 120,000 messages in flight; --max-held lowers the cap to 40 so that a
    # DLQ of 120 needs the scan to rotate what it cannot hold (80 non-matching > 40).
    letters = fill(queues, stack, 120)
    hot = {x.id for x in letters if x.key and x.key.startswith("hot/")}
    rest = {x.id for x in letters} - hot
    assert len(rest) > 2 * 40

    done = run_cli("replay-dlq", "--dlq-url", stack.dlq_url, "--match", "^hot/", "--max-held",
                   "40", "--hold", "2s", "--json")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["moved"], report["failed"], report["duplicated"]) == (len(hot), 0, 0)
    assert report["scanned"] == 120 and report["skipped"] == len(rest)
    assert report["rotated"] >= len(rest) - 40 and report["aborted"] is None
    assert queues.ids(stack.queue_url) == Counter(hot)  # each match exactly once
    time.sleep(2.5)  # the rotated ones are delayed by --hold
    left = queues.drain(stack.dlq_url, delete=False)
    assert Counter(letter_id(m["Body"]) for m in left) == Counter(rest)  # the rest, once each
    originals = {x.id: x for x in letters}
    for message in left:  # unchanged but for the original send time of those rotated
        original = originals[letter_id(message["Body"])]
        assert message["Body"] == original.body
        attrs = message["MessageAttributes"]
        assert attrs["test.origin"]["StringValue"] == "fixture"
        assert "modfleet.replay_count" not in attrs
        if "modfleet.first_sent_at" in attrs:
            assert int(attrs["modfleet.first_sent_at"]["StringValue"]) <= int(
                message["Attributes"]["SentTimestamp"])


def test_held_cap_must_be_within_the_sqs_quota():
    with pytest.raises(InvalidRequest, match="max-held"):
        ReplayPlan("https://q/dlq", "https://q/src", max_held=200_000)
