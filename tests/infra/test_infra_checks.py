"""What `terraform test` and checkov cannot check of infra/: the stack against the worker's own code
(Settings, the pinned SDK release, setup.cfg), the install script run for real, one state per root,
`terraform fmt`, and checkov itself. Each check is also shown failing on a broken input."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from model.neuron_sdk import SDK_RELEASE
from tools.lab import infra_checks, terraform

SETUP_CFG = terraform.REPO / "setup.cfg"
VARIABLES = "modules/region-stack/variables.tf"


def test_terraform_fmt_check_is_clean(tf_tools, infra_dir):
    done = terraform.Terraform(tf_tools, infra_dir).run(
        "fmt", "-check", "-recursive", "-list=true", "-no-color", check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_misformatted_copy_fails_terraform_fmt(tf_tools, tmp_path):
    copy = terraform.copy_infra(tmp_path / "infra")
    main = copy / "modules/region-stack/main.tf"
    main.write_text(main.read_text().replace("  enable_key_rotation     = true",
                                             "  enable_key_rotation = true"))
    done = terraform.Terraform(tf_tools, copy).run(
        "fmt", "-check", "-recursive", "-list=true", "-no-color", check=False)
    assert done.returncode == 3 and done.stdout.split() == ["modules/region-stack/main.tf"]


# ---- The stack speaks the worker's settings ------------------------------------------------------


def test_the_stacks_environment_is_the_workers_settings(module_state, region_states,
                                                        worker_env_names):
    for name, state in {"module": module_state, **region_states}.items():
        environment = infra_checks.outputs(state)["worker_environment"]
        assert infra_checks.environment_problems(environment, worker_env_names) == [], name


def test_an_environment_name_the_worker_does_not_read_is_reported(worker_env_names):
    environment = {"MODFLEET_REGION": "us-east-1", "MODFLEET_QUEUE_URL": "https://q",
                   "MODFLEET_DLQ_URL": "https://d", "MODFLEET_VERDICT_TOPIC_ARN": "arn:t"}
    assert infra_checks.environment_problems(environment, worker_env_names) == [
        "sets MODFLEET_VERDICT_TOPIC_ARN, which worker.settings does not read",
        "must set MODFLEET_TOPIC_ARN",
    ]


@pytest.mark.parametrize("region", ["us-east-1", "ap-southeast-1"])
def test_each_regions_timings_fit_the_worker(region_states, settings_from, region):
    """The worker's own Settings, built from the region's worker_environment (the worker's rules
    run on them), against the queue, unit, hook and alarm Terraform made for that region."""
    state = region_states[region]
    settings = settings_from(infra_checks.outputs(state)["worker_environment"])
    numbers = infra_checks.stack_numbers(state)
    assert infra_checks.timing_problems(numbers, settings) == []
    assert numbers["queue_visibility_timeout_s"] == settings.processing_deadline_s + 60


def test_timings_that_do_not_fit_are_reported(module_state, settings_from):
    settings = settings_from(infra_checks.outputs(module_state)["worker_environment"])
    numbers = {"queue_visibility_timeout_s": 450, "timeout_stop_s": 60,
               "drain_hook_timeout_s": 60, "oldest_message_age_s": 900}
    assert infra_checks.timing_problems(numbers, settings) == [
        "queue visibility timeout (450 s) must cover the processing deadline (900 s) within the "
        "SQS limit",
        "systemd TimeoutStopSec (60 s) must be above the worker's shutdown deadline (60 s)",
        "the drain hook's timeout must outlast systemd's TimeoutStopSec",
        "the oldest-message alarm must not fire within one processing deadline",
    ]


def test_the_rendered_unit_is_one_the_worker_and_systemd_accept(module_state, worker_env_names,
                                                                settings_from):
    rendered = infra_checks.user_data(module_state)
    assert infra_checks.unit_problems(rendered, worker_env_names, settings_from) == []


@pytest.mark.parametrize("old, new, expected", [
    ('Environment="MODFLEET_QUEUE_URL=', 'Environment="modfleet_queue_url=',
     ["worker unit sets modfleet_queue_url, which worker.settings does not read",
      "worker unit must set MODFLEET_QUEUE_URL"]),
    ("--constraint /opt/modfleet/dlami-packages.txt ", "",
     [f"cloud-init: {infra_checks.INSTALL_SCRIPT} needs --constraint"]),
    ("TimeoutStopSec=90", "TimeoutStopSec=30",
     ["worker unit: TimeoutStopSec ['30'] must be one number above the shutdown deadline (60 s)"]),
    ("Restart=on-failure\n      RestartSec=10", "Restart=no\n      RestartSec=10",
     ["worker unit: needs Restart=on-failure"]),
], ids=["env-name", "no-constraints", "stop-timeout", "no-restart"])
def test_a_broken_rendered_unit_is_reported(module_state, worker_env_names, settings_from,
                                            old, new, expected):
    rendered = infra_checks.user_data(module_state)
    assert rendered.count(old) == 1, old
    broken = rendered.replace(old, new)
    assert infra_checks.unit_problems(broken, worker_env_names, settings_from) == expected


def test_the_install_stops_clearly_where_the_dlamis_venv_is_missing(module_state, tmp_path):
    """The rendered install script, run on this machine with its venv pointing nowhere (the AMI is
    not the DLAMI): exit 1, a message naming the release, and nothing installed. Its PATH holds
    only tee, so a script that went on could not touch this machine."""
    files = infra_checks.written_files(yaml.safe_load(infra_checks.user_data(module_state)))
    script_text = files[infra_checks.INSTALL_SCRIPT]
    venv = 'venv="/opt/aws_neuronx_venv_pytorch_2_7_transformers"'
    assert script_text.count(venv) == 1
    log = tmp_path / "install.log"
    script = tmp_path / "install-worker"
    script.write_text(script_text.replace(venv, f'venv="{tmp_path}/no-such-venv"')
                      .replace("/var/log/modfleet/install.log", str(log)))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "tee").symlink_to(shutil.which("tee"))
    done = subprocess.run([shutil.which("bash"), str(script)], capture_output=True, text=True,
                          env={"PATH": str(bin_dir), "HOME": os.environ.get("HOME", "/")})
    assert done.returncode == 1, done
    expected = (f"modfleet install: no {tmp_path}/no-such-venv/bin/python: this AMI is not the "
                "Neuron SDK 2.25.0 DLAMI with the transformers-neuronx environment")
    assert expected in done.stdout
    assert expected in log.read_text()  # shipped to the log group (stream <instance>/install)


# ---- Pins and states -----------------------------------------------------------------------------


def test_the_modules_defaults_are_the_pinned_release_and_the_built_version(infra_dir):
    assert infra_checks.pin_problems((infra_dir / VARIABLES).read_text(), SDK_RELEASE,
                                     SETUP_CFG.read_text()) == []


def test_drifted_pins_are_reported(infra_dir):
    text = (infra_dir / VARIABLES).read_text()
    drifted = (text.replace(f'optional(string, "{SDK_RELEASE}")', 'optional(string, "2.26.0")')
               .replace('version               = optional(string, "0.1.0")',
                        'version               = optional(string, "0.0.9")'))
    assert infra_checks.pin_problems(drifted, SDK_RELEASE, "version = 0.1.0\n") == [
        f"fleet.neuron_sdk_release defaults to '2.26.0', model/neuron_sdk.py pins {SDK_RELEASE!r}",
        "worker.version defaults to '0.0.9', setup.cfg builds '0.1.0'",
    ]


def test_each_root_keeps_its_own_encrypted_state(infra_dir):
    assert infra_checks.backend_problems(infra_dir) == []


def test_two_roots_sharing_a_state_are_reported(tmp_path):
    copy = terraform.copy_infra(tmp_path / "infra")
    backend = copy / "regions/ap-southeast-1/backend.hcl"
    backend.write_text(backend.read_text().replace("ap-southeast-1", "us-east-1"))
    assert infra_checks.backend_problems(copy) == [
        "ap-southeast-1: backend.hcl keeps the state in us-east-1",
        "roots ['ap-southeast-1', 'us-east-1'] share one state "
        "(s3://modfleet-tfstate-us-east-1/modfleet/us-east-1/terraform.tfstate)",
    ]


# ---- checkov -----------------------------------------------------------------------------------


def test_checkov_reports_no_failed_check_and_every_skip_has_a_reason(checkov, infra_dir):
    report = infra_checks.checkov_report(checkov, infra_dir)
    failed = [
        (c["check_id"], c["resource"], c["file_path"]) for c in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 100
    for check in report["results"]["skipped_checks"]:
        assert len(check["check_result"].get("suppress_comment") or "") >= 20, check["check_id"]
    for path, check_id, reason in infra_checks.skip_comments(infra_dir):
        assert len(reason) >= 20, f"{path}: skip of {check_id} needs a written reason"
