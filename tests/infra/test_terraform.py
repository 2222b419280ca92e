"""The real Terraform CLI on infra/: init from the local provider mirror, validate every region
root, run the native tests (mocked provider), and show them failing on copies with planted
breakages (what tests/infra/checks.py used to hold is held by these runs now).

Skipped only where no terraform binary exists; a missing provider mirror is a failure that says
where the mirror is looked for (MODFLEET_TF_PLUGIN_DIR).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.lab import terraform

INFRA = terraform.INFRA
MODULE = "modules/region-stack"
ROOTS = [f"regions/{p.name}" for p in terraform.region_roots(INFRA)]


def test_there_are_region_roots_to_check():
    assert len(ROOTS) >= 2, ROOTS


@pytest.mark.parametrize("directory", [MODULE, *ROOTS])
def test_terraform_validate_passes(tf_tools, tf_infra, directory):
    result = terraform.Terraform(tf_tools, tf_infra / directory).validate()
    assert result["valid"], [d.get("summary", "") + ": " + d.get("detail", "")
                             for d in result["diagnostics"]]
    assert result["warning_count"] == 0, result["diagnostics"]


@pytest.mark.parametrize("directory", [MODULE, *ROOTS])
def test_native_terraform_tests_pass(tf_tools, tf_infra, directory):
    report = terraform.Terraform(tf_tools, tf_infra / directory).test()
    expected = _run_names(tf_infra / directory)
    assert report.ok, _failures(report.output)
    assert report.runs == {name: "pass" for name in expected}


def test_every_validation_and_precondition_has_a_refusal_test():
    """Each variable validation and each pre/postcondition is the target of an expect_failures."""
    tests = "\n".join(p.read_text() for p in INFRA.glob("*/*/tests/*.tftest.hcl"))
    targets = re.findall(r"expect_failures\s*=\s*\[([^\]]+)\]", tests)
    refused: dict[str, int] = {}
    for target in targets:
        for address in target.split(","):
            refused[address.strip()] = refused.get(address.strip(), 0) + 1
    wanted = {**_validations(INFRA / MODULE), **_validations(INFRA / ROOTS[0])}
    wanted.update(_conditions(INFRA / MODULE))
    wanted.update(_conditions(INFRA / ROOTS[0]))
    assert "output.settings" in wanted  # the roots' refusal of unknown settings keys
    short = {address: (count, refused.get(address, 0)) for address, count in wanted.items()
             if refused.get(address, 0) < count}
    assert wanted and short == {}, f"checks -> (how many, refusal tests): {short}"


# ---- A planted error makes these tests fail --------------------------------------------------


@pytest.fixture()
def planted(tmp_path, tf_tools):
    """A copy of infra/ with one text of the module replaced, initialized."""

    def plant(relative: str, old: str, new: str) -> terraform.Terraform:
        infra = terraform.copy_infra(tmp_path / "infra")
        path = infra / MODULE / relative
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} should occur once in {relative}"
        path.write_text(text.replace(old, new))
        module = terraform.Terraform(tf_tools, infra / MODULE)
        module.init()
        return module

    return plant


def test_a_broken_reference_fails_validate(planted):
    module = planted("main.tf", "deadLetterTargetArn = aws_sqs_queue.dlq.arn",
                     "deadLetterTargetArn = aws_sqs_queue.dead_letters.arn")
    result = module.validate()
    assert not result["valid"]
    assert any(d["summary"] == "Reference to undeclared resource"
               and '"dead_letters"' in d["detail"] for d in result["diagnostics"]), result


def test_a_validation_that_lets_bad_input_through_fails_the_native_tests(planted):
    module = planted("variables.tf", "var.queue.max_receive_count >= 1 &&",
                     "var.queue.max_receive_count >= 0 &&")
    assert module.validate()["valid"]  # still valid HCL: only the tests can catch it
    report = module.test("-filter=tests/refusals.tftest.hcl")
    assert not report.ok
    # "fail" (no expected failure) or "error" (the plan went on and the mock refused it)
    assert report.runs["refusals.tftest.hcl/rejects_a_max_receive_count_of_zero"] != "pass"


# ---- What tests/infra/checks.py held, now held by the native tests -----------------------------
#
# Each breakage is planted in a copy of the module and fails the run(s) named beside it. The
# breakages of one group fail disjoint runs, so one `terraform test` per group shows each of them
# caught by its own run, and no other run failing shows that nothing else did it.

MAIN, VARIABLES = "main.tf", "variables.tf"
RECORDS, MONITORING, PARAMETERS = "records.tf", "monitoring.tf", "parameters.tf"
TEMPLATE = "templates/cloud-init.yaml.tftpl"
STACK, RECORDS_TESTS, OPERATIONS = "stack.tftest.hcl", "records.tftest.hcl", "operations.tftest.hcl"
REFUSALS = "refusals.tftest.hcl"
ROLE_RUN = f"{RECORDS_TESTS}/worker_role_grants_only_the_workers_calls"

# group -> [(id, file, old, new, runs that fail)]
BREAKAGES = {
    "a": [
        ("hop-limit", MAIN, "http_put_response_hop_limit = 1", "http_put_response_hop_limit = 2",
         [f"{STACK}/launch_template_requires_imdsv2_and_encrypts_the_root_volume"]),
        ("topic-unencrypted", MAIN,
         'name              = "${var.name}-verdicts"\n  kms_master_key_id = aws_kms_key.this.arn\n',
         'name              = "${var.name}-verdicts"\n',
         [f"{STACK}/queues_topics_and_logs_use_the_stack_key"]),
        ("redrive-count-fixed", MAIN, "maxReceiveCount     = var.queue.max_receive_count",
         "maxReceiveCount     = 5", [f"{STACK}/redrive_policy_sends_to_the_dead_letter_queue"]),
        ("suffix-filter", MAIN, "filter_suffix = queue.value", 'filter_suffix = ".mp4"',
         [f"{STACK}/notifications_cover_each_video_suffix_in_both_cases"]),
        ("hook-on-launch", MAIN, '"autoscaling:EC2_INSTANCE_TERMINATING"',
         '"autoscaling:EC2_INSTANCE_LAUNCHING"',
         [f"{STACK}/drain_lifecycle_hook_outlasts_the_workers_stop"]),
        ("backlog-metric", MAIN, 'expression  = "visible / in_service"', 'expression  = "visible"',
         [f"{STACK}/scaling_policies_track_backlog_per_instance_and_wake_from_zero"]),
        ("any-release-ami", MAIN, '"description" = "*Neuron SDK ${var.fleet.neuron_sdk_release}*"',
         '"description" = "*Neuron SDK*"',
         [f"{STACK}/default_ami_is_the_pinned_releases_dlami",
          f"{STACK}/another_release_changes_the_description_filter"]),
        ("package-index", TEMPLATE, "--no-index --only-binary=:all:",
         "--extra-index-url https://pip.repos.neuron.amazonaws.com --only-binary=:all:",
         [f"{STACK}/user_data_installs_from_the_wheelhouse_into_the_dlamis_neuron_venv"]),
        ("public-bucket", MAIN,
         'restrict_public_buckets = true\n}\n\nresource "aws_s3_bucket_versioning" "uploads"',
         'restrict_public_buckets = false\n}\n\nresource "aws_s3_bucket_versioning" "uploads"',
         [f"{STACK}/upload_bucket_is_versioned_tls_only_and_encrypted_with_the_stack_key"]),
        ("iam-wildcard-action", MAIN, '"sqs:DeleteMessageBatch",', '"sqs:*",', [ROLE_RUN]),
        ("dlq-alarm-on-the-queue", MAIN,
         "dimensions          = { QueueName = aws_sqs_queue.dlq.name }",
         "dimensions          = { QueueName = aws_sqs_queue.this.name }",
         [f"{OPERATIONS}/every_paging_alarm_names_its_runbook_step_and_notifies_the_alarm_topic"]),
        ("evidence-under-the-stack-key", RECORDS,
         "kms_master_key_id = aws_kms_key.evidence.arn", "kms_master_key_id = aws_kms_key.this.arn",
         [f"{RECORDS_TESTS}/records_bucket_is_private_tls_only_and_encrypted_with_its_own_key"]),
        ("table-ttl", RECORDS, 'attribute_name = "expires_at"', 'attribute_name = "expiry"',
         [f"{RECORDS_TESTS}/verdict_cache_is_an_encrypted_on_demand_table_that_expires_items"]),
        ("parameter-name", PARAMETERS, '"queue-url"         =', '"queue_url"         =',
         [f"{OPERATIONS}/stack_parameters_name_the_stacks_resources_under_its_prefix"]),
        ("error-rate-unfilled", MONITORING,
         "100 * FILL(errors, 0) / FILL(videos, 1), 0)", "100 * errors / videos, 0)",
         [f"{OPERATIONS}/the_error_rate_alarm_divides_error_verdicts_by_all_verdicts"]),
        ("stall-without-fill", MONITORING, "AND FILL(verdicts, 0) == 0", "AND verdicts == 0",
         [f"{OPERATIONS}/the_stall_alarm_fires_on_backlog_without_verdicts"]),
        ("dashboard-without-in-service", MONITORING,
         '"GroupDesiredCapacity", "GroupInServiceInstances", "GroupPendingInstances"',
         '"GroupDesiredCapacity", "GroupPendingInstances"',
         [f"{OPERATIONS}/one_dashboard_shows_the_queue_the_verdicts_and_the_fleet"]),
        ("queue-open-to-any-bucket", MAIN,
         '    condition {\n      test     = "ArnEquals"\n      variable = "aws:SourceArn"\n'
         '      values   = [aws_s3_bucket.uploads.arn]\n    }\n\n'
         '    condition {\n      test     = "StringEquals"',
         '    condition {\n      test     = "StringEquals"',
         [f"{STACK}/only_the_upload_bucket_may_send_to_the_queue"]),
    ],
    "b": [
        ("imdsv1", MAIN, 'http_tokens                 = "required"',
         'http_tokens                 = "optional"',
         [f"{STACK}/launch_template_requires_imdsv2_and_encrypts_the_root_volume"]),
        ("iam-wildcard-resource", MAIN,
         'resources = [aws_sns_topic.verdicts.arn]\n  }\n\n  # The verdict cache',
         'resources = ["*"]\n  }\n\n  # The verdict cache', [ROLE_RUN]),
        ("stop-margin-subtracted", MAIN,
         "var.worker.shutdown_deadline_s + var.worker.stop_margin_s",
         "var.worker.shutdown_deadline_s - var.worker.stop_margin_s",
         [f"{STACK}/drain_lifecycle_hook_outlasts_the_workers_stop",
          f"{STACK}/user_data_runs_a_sandboxed_worker_with_the_stacks_settings",
          f"{STACK}/queue_visibility_and_stop_timeouts_follow_the_workers_deadlines"]),
        ("own-venv", TEMPLATE, "ExecStart=${neuron_venv}/bin/modfleet worker",
         "ExecStart=/opt/modfleet/venv/bin/modfleet worker",
         [f"{STACK}/user_data_installs_from_the_wheelhouse_into_the_dlamis_neuron_venv"]),
        ("unchecked-ami", MAIN,
         'condition     = strcontains(coalesce(self.description, "-"), '
         '"Neuron SDK ${var.fleet.neuron_sdk_release}")',
         'condition     = self.id != ""',
         [f"{REFUSALS}/refuses_an_ami_of_another_neuron_sdk_release"]),
        ("tls-optional-uploads", MAIN,
         'resources = [aws_s3_bucket.uploads.arn, "${aws_s3_bucket.uploads.arn}/*"]',
         'resources = ["${aws_s3_bucket.uploads.arn}/*"]',
         [f"{STACK}/upload_bucket_is_versioned_tls_only_and_encrypted_with_the_stack_key"]),
    ],
    "c": [
        ("visibility-too-short", MAIN,
         "var.worker.processing_deadline_s + var.queue.visibility_margin_s",
         "var.worker.processing_deadline_s / 2 + var.queue.visibility_margin_s",
         [f"{STACK}/redrive_policy_sends_to_the_dead_letter_queue",
          f"{STACK}/queue_visibility_and_stop_timeouts_follow_the_workers_deadlines"]),
        ("evidence-on-the-whole-bucket", MAIN,
         'resources = ["${aws_s3_bucket.records.arn}/${local.evidence_prefix}*"]\n  }\n\n'
         '  statement {\n    sid       = "EncryptEvidence"',
         'resources = ["${aws_s3_bucket.records.arn}/*"]\n  }\n\n'
         '  statement {\n    sid       = "EncryptEvidence"',
         [ROLE_RUN]),
    ],
}
CASES = [(group, *case) for group, cases in BREAKAGES.items() for case in cases]


@pytest.fixture(scope="session")
def planted_group(tmp_path_factory, tf_tools):
    """group -> the native tests' report on a copy of the module with that group's breakages."""
    reports: dict[str, terraform.TestReport] = {}

    def report(group: str) -> terraform.TestReport:
        if group not in reports:
            infra = terraform.copy_infra(tmp_path_factory.mktemp(f"planted-{group}") / "infra")
            files = set()
            for name, relative, old, new, runs in BREAKAGES[group]:
                path = infra / MODULE / relative
                text = path.read_text()
                assert text.count(old) == 1, f"{name}: {old!r} should occur once in {relative}"
                path.write_text(text.replace(old, new))
                files |= {run.split("/")[0] for run in runs}
            module = terraform.Terraform(tf_tools, infra / MODULE)
            module.init()
            reports[group] = module.test(*[f"-filter=tests/{name}" for name in sorted(files)])
        return reports[group]

    return report


@pytest.mark.parametrize("group, name, relative, old, new, runs", CASES,
                         ids=[case[1] for case in CASES])
def test_a_planted_breakage_fails_its_native_test(planted_group, group, name, relative, old, new,
                                                  runs):
    report = planted_group(group)
    # "fail": an assertion failed; "error": an expected failure did not come
    statuses = {run: report.runs.get(run) for run in runs}
    assert all(status in ("fail", "error") for status in statuses.values()), statuses


@pytest.mark.parametrize("group", sorted(BREAKAGES))
def test_no_run_but_the_planted_ones_fails(planted_group, group):
    report = planted_group(group)
    targeted = {run for *_, runs in BREAKAGES[group] for run in runs}
    assert {run for run, status in report.runs.items() if status != "pass"} == targeted
    assert report.passed > 0


@pytest.mark.parametrize("relative, old, new", [
    (VARIABLES, "heartbeat_interval_s  = optional(number, 60)",
     "heartbeat_interval_s  = optional(number, 600)"),
    (VARIABLES, "var.fleet.min_size >= 0", "var.fleet.min_size >= 1"),
    (VARIABLES, "ami_ssm_parameter                        = optional(string)",
     'ami_ssm_parameter                        = optional(string, '
     '"/aws/service/neuron/dlami/base/ubuntu-22.04/latest/image_id")'),
], ids=["heartbeat-default-above-visibility", "min-size-not-zero", "latest-ami-default"])
def test_a_default_the_module_refuses_fails_every_run(planted, relative, old, new):
    report = planted(relative, old, new).test("-filter=tests/worker.tftest.hcl")
    # "error": the plan stops at the refused default before any assertion
    assert report.runs["worker.tftest.hcl/the_worker_as_an_instance_gets_it"] in ("fail", "error")
    assert not report.ok


@pytest.mark.parametrize("old, new, message", [
    ("tp_degree  = 2", "tp_degree  = 4", "Every fleet.instance_types entry needs"),
    ("max_receive_count = 5", "max_recieve_count = 2",
     "Unknown settings in terraform.tfvars: queue has no max_recieve_count"),
], ids=["too-many-cores", "misspelled-setting"])
def test_a_region_tfvars_the_module_refuses_fails_the_region_test(tmp_path, tf_tools, old, new,
                                                                  message):
    infra = terraform.copy_infra(tmp_path / "infra")
    tfvars = infra / "regions/us-east-1/terraform.tfvars"
    text = tfvars.read_text()
    assert text.count(old) == 1
    tfvars.write_text(text.replace(old, new))
    root = terraform.Terraform(tf_tools, infra / "regions/us-east-1")
    root.init()
    report = root.test("-filter=tests/region.tftest.hcl")
    assert report.runs["region.tftest.hcl/this_regions_tfvars_pass_the_module_checks"] in (
        "fail", "error")
    assert message in " ".join(report.output.replace("\\n", " ").split()), report.output[-3000:]


# ---- Helpers -----------------------------------------------------------------------------------


def _run_names(directory: Path) -> list[str]:
    return [f"{path.name}/{name}" for path in sorted((directory / "tests").glob("*.tftest.hcl"))
            for name in re.findall(r'^run "([^"]+)"', path.read_text(), re.M)]


def _validations(directory: Path) -> dict[str, int]:
    """var.NAME -> number of validation blocks, for every variable of a directory."""
    counts: dict[str, int] = {}
    for path in directory.glob("*.tf"):
        for name, body in _blocks(path.read_text(), r'variable "([a-z_0-9]+)"'):
            if body.count("validation {"):
                counts[f"var.{name}"] = body.count("validation {")
    return counts


def _conditions(directory: Path) -> dict[str, int]:
    """ADDRESS -> number of precondition/postcondition blocks in that resource, data source or
    output."""
    counts: dict[str, int] = {}
    for path in directory.glob("*.tf"):
        text = path.read_text()
        pattern = r'(resource|data) "([a-z0-9_]+)" "([a-z0-9_]+)"'
        for (kind, rtype, name), body in _blocks(text, pattern):
            found = body.count("precondition {") + body.count("postcondition {")
            if found:
                counts[("data." if kind == "data" else "") + f"{rtype}.{name}"] = found
        for name, body in _blocks(text, r'output "([a-z0-9_]+)"'):
            if body.count("precondition {"):
                counts[f"output.{name}"] = body.count("precondition {")
    return counts


def _blocks(text: str, header: str):
    """(captured header groups, body) of each top-level block whose header matches."""
    for match in re.finditer(r"^" + header + r" \{", text, re.M):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                break
        groups = match.groups()
        yield (groups[0] if len(groups) == 1 else groups), text[match.end():end]


def _failures(output: str) -> str:
    lines = [line for line in output.splitlines() if '"@level":"error"' in line
             or '"status":"fail"' in line or '"status":"error"' in line]
    return "\n".join(lines[-20:]) or output[-3000:]


# ---- The one-VPC rule, on a real plan ----------------------------------------------------------


@pytest.mark.slow
def test_tagged_subnets_in_two_vpcs_are_refused_at_plan(tf_tools, tmp_path):
    """A plan of the us-east-1 root against the embedded AWS stack, with worker-tagged subnets in
    two VPCs: it stops, naming both VPCs and saying what to do."""
    from tools.lab.embedded_aws import TlsEmbeddedAws
    from tools.lab.exceptions import TerraformFailed
    from tools.lab.terraform_local import LocalApply

    with TlsEmbeddedAws(tmp_path / "tls") as aws:
        local = LocalApply(tf_tools, aws, tmp_path)
        first = local.add_worker_network("10.50.0.0/16")
        second = local.add_worker_network("10.51.0.0/16", subnets=1)
        try:
            local.prepare()
            with pytest.raises(TerraformFailed) as refused:
                local.plan()
        finally:
            local.remove_network(first)
            local.remove_network(second)
    message = " ".join(refused.value.output.split())  # the CLI wraps long lines
    vpcs = ", ".join(sorted([first.vpc_id, second.vpc_id]))
    assert "Error: Resource precondition failed" in message
    assert f"The subnets tagged modfleet:tier=worker lie in 2 VPCs ({vpcs})" in message
    assert "Set worker_vpc_id in terraform.tfvars to the VPC to use" in message
