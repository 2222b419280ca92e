"""The layout rules of ARCHITECTURE.md, checked on every import statement.

- Packages: model <- worker <- tools.  A package may import those to its left and nothing to its
  right.
- Rooms of tools/: ``tools.ops`` (ships) never imports ``tools.lab`` (never ships), except inside
  the functions of the commands that need the lab (demo, local-stack, bench, chaos).
- Tests import public names only: no test module imports another test module or a conftest, and
  no module anywhere imports an underscore name of another module.

Every import statement counts, including those inside functions (the lazy imports that keep
`--help` fast are imports all the same).
"""

from __future__ import annotations

import ast
import configparser
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("model", "worker", "tools")
# What each top-level package may import of the three.
ALLOWED = {"model": {"model"}, "worker": {"model", "worker"}, "tools": set(PACKAGES)}
LAB = "tools.lab"
# The commands that run the lab, and may import it inside their functions.
LAB_COMMANDS = {f"tools/ops/commands/{name}.py" for name in ("demo", "local_stack", "bench",
                                                             "chaos")}
TEST_SUPPORT = ("tests/neuron_fakes",)  # stand-in SDK packages, imported by their own names


@dataclass(frozen=True)
class Import:
    """One imported module (and the names taken from it) at a line of a file."""

    path: str
    line: int
    module: str
    names: tuple[str, ...]
    top_level: bool  # at module level, not inside a function or class body


def imports(path: Path, root: Path) -> Iterator[Import]:
    """Every absolute import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    nested = {id(node) for outer in ast.walk(tree)
              if isinstance(outer, (ast.FunctionDef, ast.AsyncFunctionDef))
              for node in ast.walk(outer)}
    relative = str(path.relative_to(root))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(relative, node.lineno, alias.name, (), id(node) not in nested)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield Import(relative, node.lineno, node.module,
                         tuple(alias.name for alias in node.names), id(node) not in nested)


def package_violations(root: Path) -> list[str]:
    """Imports that point against model <- worker <- tools, as 'file:line: a imports b'."""
    problems = []
    for package, allowed in ALLOWED.items():
        for path in sorted((root / package).rglob("*.py")):
            for found in imports(path, root):
                target = found.module.split(".")[0]
                if target in PACKAGES and target not in allowed:
                    problems.append(f"{found.path}:{found.line}: {package} imports {target}")
    return problems


def room_violations(root: Path) -> list[str]:
    """Imports of the lab by what ships (model, worker, tools.ops), but for lab commands' lazy
    imports."""
    problems = []
    for folder in ("model", "worker", "tools/ops"):
        for path in sorted((root / folder).rglob("*.py")):
            for found in imports(path, root):
                if not (found.module == LAB or found.module.startswith(LAB + ".")):
                    continue
                if found.path in LAB_COMMANDS and not found.top_level:
                    continue
                problems.append(f"{found.path}:{found.line}: imports the lab ({found.module})")
    return problems


def public_name_violations(root: Path) -> list[str]:
    """Tests importing test modules or conftests; any module importing another's underscore
    name."""
    own = set(PACKAGES) | {"tests", "conftest"}
    problems = []
    for folder in (*PACKAGES, "tests"):
        for path in sorted((root / folder).rglob("*.py")):
            if str(path.relative_to(root)).startswith(TEST_SUPPORT):
                continue
            for found in imports(path, root):
                top = found.module.split(".")[0]
                if top not in own:
                    continue
                if top in {"tests", "conftest"}:
                    problems.append(f"{found.path}:{found.line}: imports a test module "
                                    f"({found.module})")
                private = [n for n in found.names if n.startswith("_")]
                private += [p for p in found.module.split(".") if p.startswith("_")
                            and p != "__main__"]
                if private:
                    problems.append(f"{found.path}:{found.line}: imports private name(s) "
                                    f"{', '.join(private)} of {found.module}")
    return problems


def test_dependencies_point_one_way():
    assert package_violations(ROOT) == []


def test_what_ships_never_imports_the_lab():
    assert room_violations(ROOT) == []


def test_tests_and_modules_import_public_names_only():
    assert public_name_violations(ROOT) == []


def _copy(tmp_path: Path) -> Path:
    for folder in (*PACKAGES, "tests"):
        shutil.copytree(ROOT / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return tmp_path


def test_the_checks_catch_planted_violations(tmp_path):
    root = _copy(tmp_path)
    checks = (package_violations, room_violations, public_name_violations)
    before = [set(check(root)) for check in checks]
    planted = root / "model" / "config.py"
    planted.write_text(planted.read_text() + "\n\ndef _late():\n    from worker import logs\n")
    (root / "worker" / "planted.py").write_text("import tools.ops.cli\n")
    (root / "tools" / "ops" / "planted.py").write_text(
        "def late():\n    from tools.lab.embedded_aws import provision\n")
    demo = root / "tools" / "ops" / "commands" / "demo.py"
    demo.write_text("from tools.lab import harness\n" + demo.read_text())
    (root / "tests" / "test_planted.py").write_text(
        "from tests.worker import test_decode\nfrom worker.settings import _problems\n")

    packages, rooms, public = (sorted(set(check(root)) - seen)
                               for check, seen in zip(checks, before))
    assert len(packages) == 2
    assert packages[0].startswith("model/config.py:") and packages[0].endswith(
        "model imports worker")
    assert packages[1] == "worker/planted.py:1: worker imports tools"
    assert rooms == ["tools/ops/commands/demo.py:1: imports the lab (tools.lab)",
                     "tools/ops/planted.py:2: imports the lab (tools.lab.embedded_aws)"]
    assert public == [
        "tests/test_planted.py:1: imports a test module (tests.worker)",
        "tests/test_planted.py:2: imports private name(s) _problems of worker.settings"]


def test_the_console_script_lives_in_the_operators_room():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    scripts = setup["options.entry_points"]["console_scripts"].strip()
    assert scripts == "modfleet = tools.ops.cli:main"
    assert "tools.lab" in setup["options.packages.find"]["exclude"]
