"""`modfleet hashlist` against the embedded stack's records bucket: import, list, remove, and the
one-line errors of a bad file or name."""

from __future__ import annotations

import json

from worker.hashlists import HashList


def test_import_list_append_and_remove(stack, s3, run_cli, tmp_path):
    where = ["--records-bucket", stack.records_bucket, "--json"]
    first = tmp_path / "first.txt"
    first.write_text(f"{'0f' * 32} case-1\n{'0f' * 32} duplicate\n")
    exported = tmp_path / "te.json"
    exported.write_text(json.dumps({"data": [
        {"id": "42", "type": "HASH_PDQ", "raw_indicator": "a" * 64}]}))

    done = run_cli("hashlist", "import", "shared-list", str(first), "--threshold", "20", *where)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["entries"] == 1  # de-duplicated by hash
    done = run_cli("hashlist", "import", "shared-list", str(exported), "--append",
                   "--threshold", "20", *where)
    assert json.loads(done.stdout)["entries"] == 2

    stored = HashList.from_json(s3.get_object(
        Bucket=stack.records_bucket, Key="hashlists/shared-list.json")["Body"].read())
    assert [(e.id, e.pdq) for e in stored.entries] == [("case-1", "0f" * 32), ("te:42", "a" * 64)]
    assert stored.threshold == 20

    listed = json.loads(run_cli("hashlist", "list", *where).stdout)["lists"]
    assert [(x["name"], x["entries"], x["threshold"]) for x in listed] == [("shared-list", 2, 20)]

    assert run_cli("hashlist", "remove", "shared-list", *where).returncode == 0
    assert run_cli("hashlist", "remove", "shared-list", *where).returncode == 1  # none left
    assert json.loads(run_cli("hashlist", "list", *where).stdout)["lists"] == []


def test_a_bad_file_or_name_is_one_line_and_exit_2(stack, run_cli, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("not-a-hash\n")
    for args in (["import", "x", str(bad)], ["import", "bad name!", str(bad)],
                 ["import", "x", str(tmp_path / "missing.txt")], ["list"],
                 ["list", "--records-bucket", "no-such-bucket"]):
        flags = ["--records-bucket", stack.records_bucket] if args[0] == "import" else []
        done = run_cli("hashlist", *args, *flags)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_an_unreachable_endpoint_is_exit_3(stack, run_cli):
    from tools.lab.embedded_aws import free_port

    done = run_cli("hashlist", "list", "--records-bucket", stack.records_bucket,
                   "--endpoint-url", f"http://127.0.0.1:{free_port('127.0.0.1')}")
    assert done.returncode == 3, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
