"""The dependency rule of ARCHITECTURE.md: model <- worker <- tools, checked on every import.

Every import statement counts, including those inside functions (the lazy imports that keep
`--help` fast are imports all the same).
"""

from __future__ import annotations

import ast
import configparser
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("model", "worker", "tools")
# What each top-level package may import of the three.
ALLOWED = {"model": {"model"}, "worker": {"model", "worker"}, "tools": set(PACKAGES)}


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in ``path`` that names one of PACKAGES."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, name.split(".")[0]) for name in names
                  if name.split(".")[0] in PACKAGES]
    return found


def violations(root: Path) -> list[str]:
    """Every import under ``root`` that points against the rule, as 'file:line: a imports b'."""
    problems = []
    for package, allowed in ALLOWED.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, target in imported_packages(path):
                if target not in allowed:
                    problems.append(f"{path.relative_to(root)}:{line}: {package} imports {target}")
    return problems


def test_dependencies_point_one_way():
    assert violations(ROOT) == []


def test_the_check_catches_a_planted_violation(tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    assert violations(tmp_path) == []
    planted = tmp_path / "model" / "config.py"
    planted.write_text(planted.read_text() + "\n\ndef _late():\n    from worker import logs\n")
    (tmp_path / "worker" / "planted.py").write_text("import tools.cli\n")
    found = violations(tmp_path)
    assert len(found) == 2
    assert found[0].startswith("model/config.py:") and found[0].endswith("model imports worker")
    assert found[1] == "worker/planted.py:1: worker imports tools"


def test_the_console_script_lives_in_tools():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    scripts = setup["options.entry_points"]["console_scripts"].strip()
    assert scripts == "modfleet = tools.cli:main"
