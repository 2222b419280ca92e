"""infra/ as it is: formatted, lint-clean, and consistent with the worker it runs."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from tests.infra import checks, offline_tools
from worker.settings import Settings


def test_terraform_fmt_check_is_clean(infra_dir):
    assert offline_tools.fmt_problems(infra_dir) == []


@pytest.mark.parametrize("check", list(checks.structural_checks()), ids=lambda c: c.__name__)
def test_structure(infra, check):
    assert check(infra) == []


def test_user_data_speaks_the_workers_settings(infra, worker_env_names):
    assert checks.check_worker_contract(infra, worker_env_names, Settings) == []


@pytest.mark.parametrize("region", ["us-east-1", "ap-southeast-1"])
def test_timings_fit_the_worker(infra, region):
    worker = Settings(**checks.worker_values(infra, region), compiled_dir="/compiled")
    stack = checks.stack_timings(infra, region)
    assert worker.heartbeat_interval_s < worker.visibility_timeout_s
    assert worker.heartbeat_interval_s < stack["queue_visibility_timeout_s"]
    assert worker.processing_deadline_s <= stack["queue_visibility_timeout_s"] <= 43200
    assert (
        worker.shutdown_deadline_s < stack["worker_timeout_stop_s"] < stack["drain_hook_timeout_s"]
    )


def test_terraform_renders_a_worker_unit_the_worker_accepts(
    infra, infra_dir, worker_env_names, tmp_path
):
    rendered = offline_tools.render_template(
        infra_dir / checks.TEMPLATE, checks.render_variables(infra, "us-east-1"), tmp_path
    )
    expected = checks.worker_values(infra, "us-east-1")
    assert checks.check_rendered_user_data(rendered, worker_env_names, expected) == []


def test_the_install_stops_clearly_where_the_dlamis_venv_is_missing(infra, infra_dir, tmp_path):
    """The rendered install script, run on this machine with worker.neuron_venv pointing nowhere
    (the AMI is not the DLAMI): exit 1, a message naming the release, and nothing installed. Its
    PATH holds only tee, so a script that went on could not touch this machine."""
    variables = checks.render_variables(infra, "us-east-1")
    variables["neuron_venv"] = str(tmp_path / "no-such-venv")
    rendered = offline_tools.render_template(
        infra_dir / checks.TEMPLATE, variables, tmp_path / "render")
    files = checks.written_files(yaml.safe_load(rendered))
    log = tmp_path / "install.log"
    script = tmp_path / "install-worker"
    script.write_text(files[checks.INSTALL_SCRIPT].replace("/var/log/modfleet/install.log",
                                                           str(log)))
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


def test_checkov_reports_no_failed_check_and_every_skip_has_a_reason(infra_dir):
    report = offline_tools.checkov_report(infra_dir)
    failed = [
        (c["check_id"], c["resource"], c["file_path"]) for c in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 100
    for check in report["results"]["skipped_checks"]:
        assert len(check["check_result"].get("suppress_comment") or "") >= 20, check["check_id"]
    for path, check_id, reason in offline_tools.skip_comments(infra_dir):
        assert len(reason) >= 20, f"{path}: skip of {check_id} needs a written reason"
