"""Run the real Terraform CLI on a copy of infra/, offline: init, validate, test, apply, destroy.

Providers come from a local mirror (``infra/offline.tfrc``, filled in with the mirror directory), so
nothing is downloaded.  Work happens in a copy of infra/, so that ``.terraform``, lock files and
state never land in the repository.  Errors say what is missing and where to get it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.lab.exceptions import TerraformFailed, TerraformUnavailable

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
CLI_CONFIG_TEMPLATE = INFRA / "offline.tfrc"
DEFAULT_PLUGIN_DIR = "/opt/tf-plugins"  # where this project's machine image keeps the AWS provider
PROVIDER = "registry.terraform.io/hashicorp/aws"
MIN_VERSION = (1, 10)  # the region roots' required_version


@dataclass(frozen=True)
class Toolchain:
    """A terraform binary and the CLI configuration that installs providers from the mirror."""

    terraform: Path
    plugin_dir: Path
    cli_config: Path
    version: str

    def env(self) -> dict[str, str]:
        return {"TF_CLI_CONFIG_FILE": str(self.cli_config), "TF_IN_AUTOMATION": "1",
                "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"}


def plugin_dir_setting() -> Path:
    """The provider mirror: ``MODFLEET_TF_PLUGIN_DIR``, else this project's machine image's."""
    return Path(os.environ.get("MODFLEET_TF_PLUGIN_DIR") or DEFAULT_PLUGIN_DIR)


def find_terraform() -> Path:
    """The terraform binary on PATH (``MODFLEET_TERRAFORM`` overrides), or TerraformUnavailable."""
    named = os.environ.get("MODFLEET_TERRAFORM")
    found = shutil.which(named or "terraform")
    if not found:
        raise TerraformUnavailable(
            f"terraform not found ({'MODFLEET_TERRAFORM=' + named if named else 'not on PATH'}): "
            f"install Terraform >= {'.'.join(map(str, MIN_VERSION))} "
            "(https://developer.hashicorp.com/terraform/install) or set MODFLEET_TERRAFORM.")
    return Path(found)


def toolchain(work_dir: Path, plugin_dir: Path | None = None) -> Toolchain:
    """Check terraform and the provider mirror; write the CLI configuration under work_dir."""
    terraform = find_terraform()
    plugin_dir = plugin_dir or plugin_dir_setting()
    providers = sorted((plugin_dir / PROVIDER).glob("*/*/terraform-provider-aws_*"))
    if not providers:
        raise TerraformUnavailable(
            f"no hashicorp/aws provider under {plugin_dir}/{PROVIDER}/<version>/<os_arch>/: set "
            "MODFLEET_TF_PLUGIN_DIR to a provider mirror (make one where the registry is reachable "
            "with `terraform providers mirror DIR` in infra/regions/us-east-1).")
    version = _version(terraform)
    work_dir.mkdir(parents=True, exist_ok=True)
    cli_config = work_dir / "offline.tfrc"
    cli_config.write_text(CLI_CONFIG_TEMPLATE.read_text().replace("@PLUGIN_DIR@", str(plugin_dir)))
    return Toolchain(terraform, plugin_dir, cli_config, version)


def _version(terraform: Path) -> str:
    out = subprocess.run([str(terraform), "version", "-json"], capture_output=True, text=True,
                         timeout=60, check=False, env={**os.environ, "CHECKPOINT_DISABLE": "1"})
    try:
        version = json.loads(out.stdout)["terraform_version"]
    except (ValueError, KeyError) as exc:
        raise TerraformUnavailable(f"{terraform} version -json gave no version: "
                                   f"{(out.stdout + out.stderr)[-500:]}") from exc
    if tuple(int(p) for p in version.split(".")[:2]) < MIN_VERSION:
        raise TerraformUnavailable(f"{terraform} is Terraform {version}; infra/ needs >= "
                                   f"{'.'.join(map(str, MIN_VERSION))}")
    return version


def copy_infra(destination: Path, source: Path = INFRA) -> Path:
    """A copy of infra/ (links kept, so the roots still share one set of .tf files)."""
    shutil.copytree(source, destination, symlinks=True, ignore=shutil.ignore_patterns(
        ".terraform", ".terraform.lock.hcl", "*.tfstate", "*.tfstate.*", "tfplan"))
    return destination


def region_roots(infra: Path) -> list[Path]:
    """Every region root under infra/regions/."""
    return sorted(p for p in (infra / "regions").iterdir() if (p / "main.tf").exists())


@dataclass(frozen=True)
class TestReport:
    """What ``terraform test -json`` reported: the summary and each run's status."""

    passed: int
    failed: int
    errored: int
    skipped: int
    runs: dict[str, str] = field(default_factory=dict)  # "file.tftest.hcl/run" -> status
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.errored == 0 and self.passed > 0


class Terraform:
    """Terraform commands in one working directory, with the offline CLI configuration."""

    def __init__(self, tools: Toolchain, directory: Path,
                 env: Mapping[str, str] | None = None, timeout_s: float = 900) -> None:
        self.tools = tools
        self.directory = directory
        self._env = {**os.environ, **tools.env(), **(env or {})}
        self._timeout_s = timeout_s

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``terraform ARGS`` in the directory; TerraformFailed on a non-zero exit if check."""
        command = [str(self.tools.terraform), *args]
        # A session of its own, so that a timeout kills the provider processes too: they hold
        # the output pipes open, and a hung provider start was seen on a loaded machine.
        process = subprocess.Popen(command, cwd=self.directory, env=self._env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   start_new_session=True, preexec_fn=_ordinary_scheduling)
        try:
            stdout, stderr = process.communicate(timeout=self._timeout_s)
        except subprocess.TimeoutExpired:
            _kill_session(process)
            stdout, stderr = process.communicate()
            raise TerraformFailed(command[1:], -9, f"timed out after {self._timeout_s:.0f} s\n"
                                  + stdout + stderr) from None
        except BaseException:  # e.g. a test's timeout: no terraform left behind
            _kill_session(process)
            raise
        done = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
        if check and done.returncode != 0:
            raise TerraformFailed(command[1:], done.returncode, stdout + stderr)
        return done

    def init(self, backend: bool = False) -> None:
        self.run("init", "-input=false", "-no-color", f"-backend={str(backend).lower()}")

    def validate(self) -> dict[str, Any]:
        """``terraform validate -json``: valid, error_count, diagnostics (no raise if invalid)."""
        return json.loads(self.run("validate", "-json", "-no-color", check=False).stdout)

    def test(self, *args: str) -> TestReport:
        """``terraform test -json``; the report says which runs passed (never raises on failure)."""
        done = self.run("test", "-json", "-no-color", *args, check=False)
        return _test_report(done.stdout + done.stderr)

    def plan(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("plan", "-input=false", "-no-color", "-lock=false", *args, check=check)

    def apply(self, *args: str) -> None:
        self.run("apply", "-input=false", "-no-color", "-auto-approve", *args)

    def destroy(self, *args: str) -> None:
        self.run("destroy", "-input=false", "-no-color", "-auto-approve", *args)

    def outputs(self) -> dict[str, Any]:
        """The root's outputs, name -> value."""
        raw = json.loads(self.run("output", "-json", "-no-color").stdout)
        return {name: entry["value"] for name, entry in raw.items()}

    def state_addresses(self) -> list[str]:
        done = self.run("state", "list", "-no-color", check=False)
        return [line for line in done.stdout.splitlines() if line.strip()]


def _ordinary_scheduling() -> None:
    """Run terraform under the default scheduler, whatever its parent runs under.

    libSvtAv1Enc (PyAV's AV1 encoder), run as root, moves the calling thread to SCHED_FIFO 99
    for good; a terraform started from that thread inherits it, and on two cores its Go runtime
    and the provider's spin each other out: a validate ran 20 minutes at 100 % CPU.
    """
    with contextlib.suppress(OSError):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def _kill_session(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _test_report(output: str) -> TestReport:
    runs: dict[str, str] = {}
    summary: dict[str, Any] = {}
    for line in output.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("type") == "test_run" and record.get("test_run", {}).get("progress") == (
                "complete"):
            run = record["test_run"]
            runs[f"{Path(run['path']).name}/{run['run']}"] = run.get("status", "?")
        elif record.get("type") == "test_summary":
            summary = record.get("test_summary", {})
    return TestReport(passed=summary.get("passed", 0), failed=summary.get("failed", 0),
                      errored=summary.get("errored", 0), skipped=summary.get("skipped", 0),
                      runs=runs, output=output)
