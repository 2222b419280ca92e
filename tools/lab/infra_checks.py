"""What tests/infra checks of infra/ that neither `terraform test` nor checkov can: the stack
against the worker's own code (Settings, the pinned Neuron SDK release, setup.cfg's version),
the rendered systemd unit against systemd, and one state per region root.

Nothing here reads HCL expressions: the values come from Terraform itself, the state of a
``terraform test -json -verbose`` run (mocked provider), so what is checked is what Terraform
renders.  Each check returns the problems it finds, an empty list when it holds.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

WORKER_UNIT = "/etc/systemd/system/modfleet-worker.service"
INSTALL_SCRIPT = "/opt/modfleet/bin/install-worker"
# What the worker cannot run without (the rest have defaults in worker/settings.py).
REQUIRED_ENVIRONMENT = ("MODFLEET_REGION", "MODFLEET_QUEUE_URL", "MODFLEET_DLQ_URL",
                        "MODFLEET_TOPIC_ARN")
TIMING_SETTINGS = ("visibility_timeout_s", "heartbeat_interval_s", "processing_deadline_s",
                   "shutdown_deadline_s")
SQS_MAX_VISIBILITY_S = 43200


# ---- What Terraform made ---------------------------------------------------------------------


def run_states(test_output: str) -> dict[str, dict[str, Any]]:
    """"file/run" -> state, for each apply run of a ``terraform test -json -verbose`` output."""
    states = {}
    for line in test_output.splitlines():
        if '"type":"test_state"' not in line:
            continue
        record = json.loads(line)
        states[f"{Path(record['@testfile']).name}/{record['@testrun']}"] = record["test_state"]
    return states


def resources(state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Address -> attribute values of every resource and data source of a state, any module."""
    found: dict[str, dict[str, Any]] = {}
    modules = [state.get("root_module") or {}]
    while modules:
        module = modules.pop()
        found.update({r["address"]: r.get("values") or {} for r in module.get("resources", [])})
        modules += module.get("child_modules", [])
    return found


def outputs(state: Mapping[str, Any]) -> dict[str, Any]:
    """Output name -> value."""
    return {name: entry.get("value") for name, entry in (state.get("outputs") or {}).items()}


def one_resource(state: Mapping[str, Any], suffix: str) -> dict[str, Any]:
    """The values of the one resource whose address ends with suffix (module path aside)."""
    matches = [v for address, v in resources(state).items()
               if address == suffix or address.endswith("." + suffix)]
    if len(matches) != 1:
        raise LookupError(f"{len(matches)} resources end with {suffix!r} in the state")
    return matches[0]


def user_data(state: Mapping[str, Any]) -> str:
    """The cloud-init document of the stack's launch template."""
    return base64.b64decode(one_resource(state, "aws_launch_template.this")["user_data"]).decode()


def written_files(document: Mapping[str, Any]) -> dict[str, str]:
    """path -> content of each file a cloud-init document writes (``write_files``)."""
    return {f.get("path"): f.get("content", "") for f in document.get("write_files") or []}


def stack_numbers(state: Mapping[str, Any]) -> dict[str, int]:
    """The stack's own timings: queue visibility, TimeoutStopSec, drain hook, age alarm."""
    unit = written_files(yaml.safe_load(user_data(state))).get(WORKER_UNIT, "")
    stop = re.findall(r"^TimeoutStopSec=(\d+)$", unit, re.M)
    group = one_resource(state, "aws_autoscaling_group.this")
    return {
        "queue_visibility_timeout_s": one_resource(state, "aws_sqs_queue.this")[
            "visibility_timeout_seconds"],
        "timeout_stop_s": int(stop[0]) if len(stop) == 1 else -1,
        "drain_hook_timeout_s": group["initial_lifecycle_hook"][0]["heartbeat_timeout"],
        "oldest_message_age_s": int(one_resource(
            state, "aws_cloudwatch_metric_alarm.oldest_message_age")["threshold"]),
    }


# ---- The stack against the worker ------------------------------------------------------------


def environment_problems(environment: Mapping[str, str], env_var_names: frozenset[str]
                         ) -> list[str]:
    """Every MODFLEET_* variable set is one the worker's Settings read; the required ones are
    set."""
    problems = [f"sets {name}, which worker.settings does not read"
                for name in sorted(set(environment) - env_var_names)]
    return problems + [f"must set {name}" for name in REQUIRED_ENVIRONMENT
                       if name not in environment]


def timing_problems(numbers: Mapping[str, int], settings: Any) -> list[str]:
    """The stack's timings fit the worker's (``settings``: the worker's Settings, already
    validated by the worker's own rules, e.g. heartbeat below its visibility timeout)."""
    problems = []
    visibility = numbers["queue_visibility_timeout_s"]
    if settings.heartbeat_interval_s >= visibility:
        problems.append(f"heartbeat ({settings.heartbeat_interval_s} s) must be shorter than the "
                        f"queue's visibility timeout ({visibility} s)")
    if not settings.processing_deadline_s <= visibility <= SQS_MAX_VISIBILITY_S:
        problems.append(f"queue visibility timeout ({visibility} s) must cover the processing "
                        f"deadline ({settings.processing_deadline_s} s) within the SQS limit")
    if numbers["timeout_stop_s"] <= settings.shutdown_deadline_s:
        problems.append(f"systemd TimeoutStopSec ({numbers['timeout_stop_s']} s) must be above "
                        f"the worker's shutdown deadline ({settings.shutdown_deadline_s} s)")
    if numbers["drain_hook_timeout_s"] <= numbers["timeout_stop_s"]:
        problems.append("the drain hook's timeout must outlast systemd's TimeoutStopSec")
    if numbers["oldest_message_age_s"] <= settings.processing_deadline_s:
        problems.append("the oldest-message alarm must not fire within one processing deadline")
    return problems


def unit_problems(rendered: str, env_var_names: frozenset[str],
                  settings_from: Callable[[Mapping[str, str]], Any]) -> list[str]:
    """The cloud-init document Terraform rendered: a worker unit whose environment the worker's
    Settings accept (``settings_from`` builds them from the unit's variables), that systemd stops
    after the worker's drain, started once the install succeeded; an install script that uses
    the wheelhouse only, the DLAMI's versions as constraints, into the venv the unit runs."""
    try:
        document = yaml.safe_load(rendered)
    except yaml.YAMLError as exc:
        return [f"rendered user data is not YAML: {exc}"]
    files = written_files(document)
    if WORKER_UNIT not in files:
        return [f"rendered user data writes no {WORKER_UNIT}"]
    lines = [line.strip() for line in files[WORKER_UNIT].splitlines()]
    environment = {}
    for line in lines:
        match = re.fullmatch(r'Environment="([^=]+)=(.*)"', line)
        if match:
            environment[match.group(1)] = match.group(2)
        elif line.startswith("Environment"):
            return [f"worker unit: cannot read {line!r}"]
    problems = [f"worker unit {p}" for p in environment_problems(environment, env_var_names)]
    if problems:
        return problems
    settings = settings_from(environment)
    stop = [line.partition("=")[2] for line in lines if line.startswith("TimeoutStopSec=")]
    if len(stop) != 1 or not stop[0].isdigit() or int(stop[0]) <= settings.shutdown_deadline_s:
        problems.append(f"worker unit: TimeoutStopSec {stop} must be one number above the "
                        f"shutdown deadline ({settings.shutdown_deadline_s} s)")
    for line in ("Restart=on-failure", "KillSignal=SIGTERM"):
        if line not in lines:
            problems.append(f"worker unit: needs {line}")
    commands = " ".join(str(c) for c in document.get("runcmd") or [])
    if f"{INSTALL_SCRIPT} && systemctl enable --now modfleet-worker.service" not in commands:
        problems.append("cloud-init: runcmd must start modfleet-worker.service once installed")
    return problems + _install_problems(files.get(INSTALL_SCRIPT, ""), lines)


def _install_problems(script: str, unit_lines: list[str]) -> list[str]:
    problems = []
    venv = re.search(r'^venv="([^"]+)"$', script, re.M)
    if not venv:
        return [f"cloud-init: {INSTALL_SCRIPT} must name the DLAMI's venv (venv=\"...\")"]
    if f"ExecStart={venv.group(1)}/bin/modfleet worker" not in unit_lines:
        problems.append(f"worker unit: ExecStart must run modfleet from {venv.group(1)}")
    for needed in ("--no-index", "--only-binary=:all:", "--constraint", "set -euo pipefail",
                   'if [ ! -x "$venv/bin/python" ]; then'):
        if needed not in script:
            problems.append(f"cloud-init: {INSTALL_SCRIPT} needs {needed}")
    if "index-url" in script:
        problems.append(f"cloud-init: {INSTALL_SCRIPT} must not use a package index")
    return problems


def pin_problems(variables_tf: str, sdk_release: str, setup_cfg: str) -> list[str]:
    """The module's defaults name the Neuron SDK release model/neuron_sdk.py pins and the modfleet
    version setup.cfg builds (the wheel the instances install)."""
    problems = []
    release = re.search(r'neuron_sdk_release\s*=\s*optional\(string,\s*"([^"]+)"\)', variables_tf)
    if not release or release.group(1) != sdk_release:
        problems.append(f"fleet.neuron_sdk_release defaults to "
                        f"{release.group(1) if release else None!r}, model/neuron_sdk.py pins "
                        f"{sdk_release!r}")
    version = re.search(r'^\s+version\s*=\s*optional\(string,\s*"([^"]+)"\)', variables_tf, re.M)
    built = re.search(r"^version\s*=\s*(\S+)$", setup_cfg, re.M)
    if not version or not built or version.group(1) != built.group(1):
        problems.append(f"worker.version defaults to {version.group(1) if version else None!r}, "
                        f"setup.cfg builds {built.group(1) if built else None!r}")
    return problems


# ---- Layout: one state per root --------------------------------------------------------------


def backend_problems(infra: Path) -> list[str]:
    """Two or more region roots, each with an encrypted S3 state of its own, named for its region
    (backend.hcl is not read by terraform test)."""
    roots = sorted(p for p in (infra / "regions").iterdir() if (p / "main.tf").exists())
    problems = [] if len(roots) >= 2 else [f"need two region roots, found {len(roots)}"]
    states: dict[tuple[str, str], list[str]] = {}
    for root in roots:
        text = (root / "backend.hcl").read_text() if (root / "backend.hcl").exists() else ""
        config = dict(re.findall(r'^(\w+)\s*=\s*"?([^"\n]+?)"?\s*$', text, re.M))
        if not {"bucket", "key", "region"} <= set(config) or config.get("encrypt") != "true":
            problems.append(f"{root.name}: backend.hcl needs bucket, key, region and "
                            "encrypt = true")
        elif config["region"] != root.name:
            problems.append(f"{root.name}: backend.hcl keeps the state in {config['region']}")
        states.setdefault((config.get("bucket", ""), config.get("key", "")), []).append(root.name)
    problems += [f"roots {names} share one state (s3://{bucket}/{key})"
                 for (bucket, key), names in states.items() if len(names) > 1]
    return problems


# ---- Tools: checkov and systemd-analyze ------------------------------------------------------


def checkov_report(checkov: Path, directory: Path) -> dict[str, Any]:
    """checkov's JSON report of the Terraform under directory (no network: --skip-download)."""
    if not checkov.exists():
        raise FileNotFoundError(
            f"checkov not found at {checkov}: `make test` installs it into .venv-infra")
    completed = subprocess.run(
        [str(checkov), "--directory", str(directory), "--framework", "terraform",
         "--skip-download", "--compact", "--output", "json"],
        capture_output=True, text=True, timeout=240, check=False,
        env={**os.environ, "LOG_LEVEL": "WARNING"})
    if completed.returncode not in (0, 1):
        raise RuntimeError(f"checkov exited {completed.returncode}: {completed.stderr[-2000:]}")
    report = json.loads(completed.stdout)
    return report[0] if isinstance(report, list) else report


SKIP_COMMENT = re.compile(r"#\s*checkov:skip=(CKV2?_[A-Z0-9_]+)(?::(.*))?")


def skip_comments(directory: Path) -> list[tuple[Path, str, str]]:
    """Every `#checkov:skip=ID:reason` in the .tf files: (file, id, reason)."""
    return [
        (path, match.group(1), (match.group(2) or "").strip())
        for path in sorted(directory.rglob("*.tf"))
        for match in SKIP_COMMENT.finditer(path.read_text())
    ]


EXPOSURE = re.compile(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)")


def systemd_exposure(unit_text: str, workdir: Path, name: str = "modfleet-worker.service"
                     ) -> tuple[float, str]:
    """`systemd-analyze security --offline=true` on a unit file: (exposure 0-10, full report)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        raise FileNotFoundError(
            "systemd-analyze not found: install Debian's systemd package "
            "(`apt-get install systemd`; `make test` does it where it runs as root)")
    workdir.mkdir(parents=True, exist_ok=True)
    unit = workdir / name
    unit.write_text(unit_text)
    done = subprocess.run([analyze, "security", "--offline=true", "--no-pager", str(unit)],
                          capture_output=True, text=True, timeout=60, check=False)
    report = done.stdout + done.stderr
    match = EXPOSURE.search(report)
    if match is None:
        raise RuntimeError(f"systemd-analyze gave no exposure level ({done.returncode}): "
                           f"{report[-2000:]}")
    return float(match.group(1)), report
