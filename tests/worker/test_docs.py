"""The README stays true: its configuration table and its two commands."""

from pathlib import Path

from worker.settings import env_var_names

ROOT = Path(__file__).resolve().parents[2]


def test_readme_configuration_table_lists_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in env_var_names() if f"`{name}`" not in readme)
    assert not missing, f"README.md lacks {missing}"


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert ci == ["make test"]
