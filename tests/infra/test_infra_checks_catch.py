"""The checks fail when someone breaks what they guard: each case breaks a copy of infra/."""

from __future__ import annotations

import pytest

from tests.infra import checks, offline_tools
from tests.infra.conftest import problems_of

MAIN = "modules/region-stack/main.tf"
VARIABLES = "modules/region-stack/variables.tf"
TEMPLATE = str(checks.TEMPLATE)

BREAKAGES = [
    (
        "hop-limit",
        MAIN,
        "http_put_response_hop_limit = 1",
        "http_put_response_hop_limit = 2",
        "hop limit must be 1",
    ),
    (
        "imdsv1",
        MAIN,
        'http_tokens                 = "required"',
        'http_tokens                 = "optional"',
        "IMDSv2 must be required",
    ),
    (
        "env-name",
        MAIN,
        "MODFLEET_TOPIC_ARN             =",
        "MODFLEET_VERDICT_TOPIC_ARN     =",
        "sets MODFLEET_VERDICT_TOPIC_ARN, which worker.settings does not read",
    ),
    (
        "heartbeat",
        VARIABLES,
        "heartbeat_interval_s  = optional(number, 60)",
        "heartbeat_interval_s  = optional(number, 600)",
        "heartbeat",
    ),
    (
        "visibility-magic-number",
        MAIN,
        "visibility_timeout_seconds        = local.queue_visibility_timeout_s\n  message_retention",
        "visibility_timeout_seconds        = 300\n  message_retention",
        "derived from the processing deadline",
    ),
    (
        "visibility-too-short",
        MAIN,
        "var.worker.processing_deadline_s + var.queue.visibility_margin_s",
        "var.worker.processing_deadline_s / 2 + var.queue.visibility_margin_s",
        "must cover the processing deadline",
    ),
    (
        "stop-timeout",
        TEMPLATE,
        "TimeoutStopSec=${timeout_stop_s}",
        "TimeoutStopSec=30",
        "TimeoutStopSec=${timeout_stop_s}",
    ),
    (
        "stop-margin",
        MAIN,
        "var.worker.shutdown_deadline_s + var.worker.stop_margin_s",
        "var.worker.shutdown_deadline_s - var.worker.stop_margin_s",
        "TimeoutStopSec",
    ),
    (
        "restart",
        TEMPLATE,
        "Restart=on-failure\n      RestartSec=10",
        "Restart=no\n      RestartSec=10",
        "Restart=on-failure",
    ),
    ("iam-wildcard-action", MAIN, '"sqs:DeleteMessageBatch",', '"sqs:*",', "wildcard action sqs:*"),
    (
        "iam-wildcard-resource",
        MAIN,
        'resources = [aws_sns_topic.verdicts.arn]\n  }\n\n  statement {\n    sid       = "UseStack',
        'resources = ["*"]\n  }\n\n  statement {\n    sid       = "UseStack',
        "sns:Publish on *",
    ),
    (
        "iam-send-to-queue",
        MAIN,
        '"sqs:GetQueueAttributes"]\n    resources = [aws_sqs_queue.dlq.arn]',
        '"sqs:GetQueueAttributes"]\n    resources = [aws_sqs_queue.this.arn]',
        "sqs:SendMessage on ${aws_sqs_queue.this.arn}",
    ),
    (
        "topic-unencrypted",
        MAIN,
        'name              = "${var.name}-verdicts"\n  kms_master_key_id = aws_kms_key.this.arn\n',
        'name              = "${var.name}-verdicts"\n',
        "topic verdicts: must be encrypted",
    ),
    (
        "no-redrive-variable",
        MAIN,
        "maxReceiveCount     = var.queue.max_receive_count",
        "maxReceiveCount     = 5",
        "redrive_policy",
    ),
    (
        "suffix-filter",
        MAIN,
        "filter_suffix = queue.value",
        'filter_suffix = ".mp4"',
        "filter on each of local.video_suffixes",
    ),
    (
        "public-bucket",
        MAIN,
        "restrict_public_buckets = true",
        "restrict_public_buckets = false",
        "restrict_public_buckets",
    ),
    (
        "hook-on-launch",
        MAIN,
        '"autoscaling:EC2_INSTANCE_TERMINATING"',
        '"autoscaling:EC2_INSTANCE_LAUNCHING"',
        "termination lifecycle hook",
    ),
    ("min-size", VARIABLES, "var.fleet.min_size >= 0", "var.fleet.min_size >= 1", "min_size"),
    (
        "backlog-metric",
        MAIN,
        'expression  = "visible / in_service"',
        'expression  = "visible"',
        "visible messages / in-service instances",
    ),
    (
        "dlq-alarm",
        MAIN,
        "dimensions          = { QueueName = aws_sqs_queue.dlq.name }",
        "dimensions          = { QueueName = aws_sqs_queue.this.name }",
        "DLQ has messages",
    ),
    (
        "release-drift",
        VARIABLES,
        'neuron_sdk_release                       = optional(string, "2.25.0")',
        'neuron_sdk_release                       = optional(string, "2.26.0")',
        "model/neuron_sdk.py pins '2.25.0'",
    ),
    (
        "latest-ami",
        VARIABLES,
        "ami_ssm_parameter                        = optional(string)",
        'ami_ssm_parameter = optional(string, "/aws/service/neuron/dlami/base/ubuntu-22.04/'
        'latest/image_id")',
        "a default names `latest`",
    ),
    (
        "any-release-ami",
        MAIN,
        '"description" = "*Neuron SDK ${var.fleet.neuron_sdk_release}*"',
        '"description" = "*Neuron SDK*"',
        "match the release in the DLAMI's description",
    ),
    (
        "unchecked-ami",
        MAIN,
        'condition     = strcontains(coalesce(self.description, "-"), '
        '"Neuron SDK ${var.fleet.neuron_sdk_release}")',
        'condition     = self.id != ""',
        "a postcondition must check that the image names the release",
    ),
    (
        "package-index",
        TEMPLATE,
        "--no-index --only-binary=:all:",
        "--extra-index-url https://pip.repos.neuron.amazonaws.com --only-binary=:all:",
        "no package index at boot",
    ),
    (
        "own-venv",
        TEMPLATE,
        "ExecStart=${neuron_venv}/bin/modfleet worker",
        "ExecStart=/opt/modfleet/venv/bin/modfleet worker",
        "ExecStart=${neuron_venv}/bin/modfleet worker",
    ),
    (
        "stale-worker-version",
        VARIABLES,
        'version               = optional(string, "0.1.0")',
        'version               = optional(string, "0.0.9")',
        "setup.cfg builds",
    ),
    (
        "wheelhouse-whole-bucket",
        MAIN,
        'resources = ["arn:${local.partition}:s3:::${var.model_artifacts.bucket}/'
        '${local.wheelhouse_prefix}/*"]',
        'resources = ["arn:${local.partition}:s3:::${var.model_artifacts.bucket}/*"]',
        "s3:GetObject on arn:${local.partition}:s3:::${var.model_artifacts.bucket}/*",
    ),
    (
        "too-many-cores",
        "regions/us-east-1/terraform.tfvars",
        "tp_degree  = 2",
        "tp_degree  = 4",
        "NeuronCores",
    ),
    (
        "shared-state",
        "regions/ap-southeast-1/backend.hcl",
        '"modfleet-tfstate-ap-southeast-1"\nkey          = "modfleet/ap-southeast-1/',
        '"modfleet-tfstate-us-east-1"\nkey          = "modfleet/us-east-1/',
        "share one state",
    ),
]


@pytest.mark.parametrize(
    "relative, old, new, expected", [b[1:] for b in BREAKAGES], ids=[b[0] for b in BREAKAGES]
)
def test_a_broken_copy_is_reported(broken_copy, relative, old, new, expected):
    problems = problems_of(broken_copy(relative, old, new))
    assert any(expected in problem for problem in problems), problems


def test_the_real_tree_has_no_problem(infra_dir):
    assert problems_of(infra_dir) == []


def test_a_misformatted_copy_fails_terraform_fmt(broken_copy):
    copy = broken_copy(MAIN, "  enable_key_rotation     = true", "  enable_key_rotation = true")
    assert offline_tools.fmt_problems(copy) == [
        "terraform fmt would rewrite modules/region-stack/main.tf"
    ]


def rendered_problems(copy, infra, worker_env_names, tmp_path) -> list[str]:
    """Render the copy's user-data template for us-east-1 and check it as the suite does."""
    rendered = offline_tools.render_template(
        copy / checks.TEMPLATE, checks.render_variables(infra, "us-east-1"), tmp_path / "render"
    )
    return checks.check_rendered_user_data(
        rendered, worker_env_names, checks.worker_values(infra, "us-east-1")
    )


def test_a_broken_template_renders_a_unit_that_is_reported(
    broken_copy, infra, worker_env_names, tmp_path
):
    copy = broken_copy(TEMPLATE, 'Environment="${name}=', 'Environment="${lower(name)}=')
    problems = rendered_problems(copy, infra, worker_env_names, tmp_path)
    assert "worker unit sets modfleet_queue_url, which worker.settings does not read" in problems


def test_an_install_that_could_replace_the_dlamis_packages_is_reported(
    broken_copy, infra, worker_env_names, tmp_path
):
    copy = broken_copy(TEMPLATE, "--constraint /opt/modfleet/dlami-packages.txt ", "")
    problems = rendered_problems(copy, infra, worker_env_names, tmp_path)
    assert problems == [f"cloud-init: {checks.INSTALL_SCRIPT} needs --constraint"]
