"""`modfleet dlq export|delete|replay`, the filters they share with replay-dlq, the dry run's
listing and the permanent letters a replay leaves without --force, on the embedded stack."""

from __future__ import annotations

import json

import pytest

from tools.lab.embedded_aws import free_port
from tools.lab.letters import Letter, letter, letter_id
from tools.ops.dead_letters import KNOWN_CODES
from worker.settle import DEAD_LETTER_CODES, DeadLetter


def fill(queues, stack, n: int) -> list[Letter]:
    queues.drain(stack.queue_url)  # S3's s3:TestEvent from the stack's set-up: start empty
    letters = [letter(i, stack.bucket) for i in range(n)]
    queues.dead_letter(stack.dlq_url, letters, stack.queue_url)
    return letters


def candidate_id(candidate: dict) -> str:
    """The test id of a dry run's candidate: in its key, or in the short body of a non-job."""
    return letter_id(candidate["keys"][0] if candidate["keys"] else candidate["body_preview"])


def account(text: str, command: str) -> dict:
    """The JSON account among log lines (export to stdout puts it on stderr, with the logs)."""
    for line in reversed(text.splitlines()):
        if line.startswith("{") and json.loads(line).get("command") == command:
            return json.loads(line)
    raise AssertionError(f"no {command} account in: {text[-2000:]}")


def test_the_codes_the_filter_knows_are_the_ones_dead_letters_carry():
    assert DeadLetter("reason").code in DEAD_LETTER_CODES  # the worker's default dead-letter code
    assert set(KNOWN_CODES) == DEAD_LETTER_CODES | {"redrive"}


@pytest.mark.parametrize("command", [("replay-dlq",), ("dlq", "export", "-o", "-"),
                                     ("dlq", "delete"), ("dlq", "replay")])
def test_an_unknown_error_code_is_refused_with_the_list(stack, queues, run_cli, command):
    fill(queues, stack, 3)
    done = run_cli(*command, "--dlq-url", stack.dlq_url, "--error-code", "poisn_body")
    assert done.returncode == 2
    assert "poisn_body" in done.stderr and "poison_body, redrive" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert queues.depth(stack.dlq_url) == {"visible": 3, "in_flight": 0}


def test_dry_run_shows_reason_and_body_and_permanent_letters_need_force(stack, queues, run_cli):
    letters = fill(queues, stack, 10)  # ids 4 and 9 are not jobs at all
    permanent = {x.id for x in letters if x.key is None}
    assert len(permanent) == 2

    listed = run_cli("replay-dlq", "--dlq-url", stack.dlq_url, "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert "reason=bad body" in listed.stdout
    assert f"body: {letters[3].body[:40]}" in listed.stdout
    assert "would move 8, skipped 2 (2 permanent: --force replays them)" in listed.stdout
    assert ("would leave (permanent: --force replays it)" in listed.stdout
            and "body: not a job at all id-00004" in listed.stdout)

    unforced = json.loads(run_cli("replay-dlq", "--dlq-url", stack.dlq_url, "--dry-run",
                                  "--json").stdout)
    assert {candidate_id(c) for c in unforced["refused"]} == permanent
    as_json = json.loads(run_cli("replay-dlq", "--dlq-url", stack.dlq_url, "--dry-run",
                                 "--force", "--json").stdout)
    assert as_json["refused"] == []
    by_id = {candidate_id(c): c for c in as_json["candidates"]}
    assert len(by_id) == 10 and {i for i, c in by_id.items() if c["permanent"]} == permanent
    assert by_id["id-00004"]["reason"] == "bad body" and by_id["id-00009"]["reason"] is None

    first = json.loads(run_cli("replay-dlq", "--dlq-url", stack.dlq_url, "--json").stdout)
    assert (first["moved"], first["permanent"], first["exit_code"]) == (8, 2, 0)
    assert queues.depth(stack.dlq_url) == {"visible": 2, "in_flight": 0}
    forced = run_cli("replay-dlq", "--dlq-url", stack.dlq_url, "--error-code", "poison_body",
                     "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["moved"] == 1  # id-00004; id-00009 is a redrive letter
    assert set(queues.ids(stack.dlq_url)) == {"id-00009"}


def test_export_to_a_file_changes_nothing(stack, queues, run_cli, tmp_path):
    letters = fill(queues, stack, 30)
    poison = {x.id: x for x in letters if x.error_code == "poison_body"}
    out = tmp_path / "dead.jsonl"

    done = run_cli("dlq", "export", "--dlq-url", stack.dlq_url, "--error-code", "poison_body",
                   "--output", str(out), "--json")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["command"], report["exported"], report["output"]) == (
        "dlq export", len(poison), str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {letter_id(x["body"]) for x in lines} == set(poison)
    for record in lines:
        assert record["body"] == poison[letter_id(record["body"])].body
        assert (record["error_code"], record["reason"]) == ("poison_body", "bad body")
        assert record["message_attributes"]["test.origin"] == {"DataType": "String",
                                                               "StringValue": "fixture"}
        assert record["sent_at"].endswith("Z") and record["source_queue"] == stack.queue_url
    assert queues.depth(stack.dlq_url) == {"visible": 30, "in_flight": 0}  # all released

    dry = run_cli("dlq", "export", "--dlq-url", stack.dlq_url, "--dry-run", "--output",
                  str(tmp_path / "not-written.jsonl"))
    assert dry.returncode == 0 and "would export 30" in dry.stdout
    assert not (tmp_path / "not-written.jsonl").exists()


def test_export_to_stdout_and_to_s3(stack, queues, run_cli, s3):
    letters = fill(queues, stack, 12)
    hot = {x.id for x in letters if x.key and x.key.startswith("hot/")}

    piped = run_cli("dlq", "export", "--dlq-url", stack.dlq_url, "--match", "^hot/", "-o", "-",
                    "--json")
    assert piped.returncode == 0, piped.stderr
    assert {letter_id(json.loads(line)["body"]) for line in piped.stdout.splitlines()} == hot
    assert account(piped.stderr, "dlq export")["exported"] == len(hot)

    key = "exports/dlq.jsonl"
    uploaded = run_cli("dlq", "export", "--dlq-url", stack.dlq_url, "-o",
                       f"s3://{stack.bucket}/{key}", "--json")
    assert uploaded.returncode == 0, uploaded.stderr
    body = s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read().decode()
    assert sorted(letter_id(json.loads(line)["body"]) for line in body.splitlines()) == sorted(
        x.id for x in letters)
    assert json.loads(uploaded.stdout)["exported"] == 12
    assert queues.depth(stack.dlq_url) == {"visible": 12, "in_flight": 0}


def test_delete_the_chosen_letters_only(stack, queues, run_cli):
    letters = fill(queues, stack, 30)
    hot = {x.id for x in letters if x.key and x.key.startswith("hot/")}

    dry = run_cli("dlq", "delete", "--dlq-url", stack.dlq_url, "--match", "^hot/", "--dry-run",
                  "--json")
    assert dry.returncode == 0, dry.stderr
    assert {candidate_id(c) for c in json.loads(dry.stdout)["candidates"]} == hot
    assert queues.depth(stack.dlq_url) == {"visible": 30, "in_flight": 0}

    done = run_cli("dlq", "delete", "--dlq-url", stack.dlq_url, "--match", "^hot/", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["deleted"], report["skipped"], report["unseen"]) == (len(hot), 30 - len(hot), 0)
    assert set(queues.ids(stack.dlq_url)) == {x.id for x in letters} - hot

    unfiltered = run_cli("dlq", "delete", "--dlq-url", stack.dlq_url)
    assert unfiltered.returncode == 2 and "--all" in unfiltered.stderr


def test_dlq_replay_is_replay_dlq(stack, queues, run_cli):
    fill(queues, stack, 5)
    done = run_cli("dlq", "replay", "--dlq-url", stack.dlq_url, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["command"], report["moved"], report["permanent"]) == ("replay-dlq", 4, 1)
    assert report["destination_url"] == stack.queue_url


@pytest.mark.parametrize("action,verb", [(("export", "-o", "-"), "exported"),
                                         (("delete", "--all"), "deleted")])
def test_export_and_delete_exit_1_while_letters_were_not_seen(stack, sqs, queues, run_cli,
                                                               action, verb):
    fill(queues, stack, 15)
    held = sqs.receive_message(QueueUrl=stack.dlq_url, MaxNumberOfMessages=5,
                               VisibilityTimeout=600)["Messages"]  # another reader's

    done = run_cli("dlq", *action, "--dlq-url", stack.dlq_url, "--json")

    assert done.returncode == 1, done.stderr
    report = account(done.stdout + "\n" + done.stderr, f"dlq {action[0]}")
    assert (report[verb], report["unseen"]) == (10, 5)
    assert len(held) == 5 and queues.depth(stack.dlq_url)["in_flight"] == 5  # theirs, untouched


def test_an_export_to_a_path_that_cannot_be_written_changes_nothing(stack, queues, run_cli,
                                                                    tmp_path):
    fill(queues, stack, 3)
    done = run_cli("dlq", "export", "--dlq-url", stack.dlq_url, "-o",
                   str(tmp_path / "no-such-dir" / "x.jsonl"))
    assert done.returncode == 2 and "cannot write" in done.stderr
    assert queues.depth(stack.dlq_url) == {"visible": 3, "in_flight": 0}


@pytest.mark.parametrize("action", [("export", "-o", "-"), ("delete", "--all"), ("replay",)])
def test_dlq_commands_exit_by_the_table_for_settings_and_endpoints(action, embedded_aws,
                                                                    run_cli, stack):
    unknown_profile = run_cli("dlq", *action, "--dlq-url", stack.dlq_url, "--profile", "nope")
    assert unknown_profile.returncode == 2 and "nope" in unknown_profile.stderr
    missing = run_cli("dlq", *action, "--dlq-url", "no-such-dlq")
    assert missing.returncode == 2 and "no-such-dlq" in missing.stderr
    unreachable = run_cli("dlq", *action, "--dlq-url", stack.dlq_url, "--endpoint-url",
                          f"http://127.0.0.1:{free_port('127.0.0.1')}")
    assert unreachable.returncode == 3, unreachable.stderr
    for done in (unknown_profile, missing, unreachable):
        assert "Traceback" not in done.stderr and done.stdout == ""


def test_a_dlq_given_by_name_or_by_stack(stack, queues, run_cli):
    fill(queues, stack, 4)
    by_name = run_cli("dlq", "export", "--dlq-url", stack.dlq_url.rsplit("/", 1)[-1], "-o", "-")
    assert by_name.returncode == 0 and len(by_name.stdout.splitlines()) == 4
    by_stack = run_cli("replay-dlq", "--stack", stack.name, "--dry-run", "--force", "--json")
    assert json.loads(by_stack.stdout)["dlq_url"] == stack.dlq_url
