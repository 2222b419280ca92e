"""Fixtures for the checks of infra/: the real Terraform CLI (offline, from the provider mirror) on
a copy of infra/, and the states of the native tests that the Python checks read."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tools.lab import infra_checks, terraform
from tools.lab.exceptions import TerraformUnavailable
from worker.settings import Settings, env_var_names, from_sources

MODULE = "modules/region-stack"


@pytest.fixture(scope="session")
def infra_dir() -> Path:
    return terraform.INFRA


@pytest.fixture(scope="session")
def region_roots() -> list[str]:
    return [f"regions/{p.name}" for p in terraform.region_roots(terraform.INFRA)]


@pytest.fixture(scope="session")
def worker_env_names() -> frozenset[str]:
    return env_var_names()


@pytest.fixture(scope="session")
def settings_from() -> Callable[[Mapping[str, str]], Settings]:
    """The worker's Settings from a unit's MODFLEET_* variables, validated by the worker's rules."""
    return lambda environment: from_sources(environ=dict(environment))


@pytest.fixture(scope="session")
def checkov() -> Path:
    root = terraform.REPO
    return Path(os.environ.get("MODFLEET_CHECKOV", root / ".venv-infra" / "bin" / "checkov"))


@pytest.fixture(scope="session")
def tf_tools(tmp_path_factory) -> terraform.Toolchain:
    try:
        terraform.find_terraform()
    except TerraformUnavailable as exc:
        pytest.skip(str(exc))
    try:
        return terraform.toolchain(tmp_path_factory.mktemp("terraform"))
    except TerraformUnavailable as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def tf_infra(tmp_path_factory, tf_tools, region_roots) -> Path:
    """A copy of infra/ with the module and every root initialized (offline)."""
    infra = terraform.copy_infra(tmp_path_factory.mktemp("tf-infra") / "infra")
    for directory in [MODULE, *region_roots]:
        terraform.Terraform(tf_tools, infra / directory).init()
    return infra


def _state_of(tf_tools: terraform.Toolchain, directory: Path, test_file: str) -> dict[str, Any]:
    """The state of the one apply run of a test file (terraform test -verbose)."""
    done = terraform.Terraform(tf_tools, directory).run(
        "test", "-json", "-verbose", "-no-color", f"-filter=tests/{test_file}", check=False)
    states = infra_checks.run_states(done.stdout)
    assert len(states) == 1, f"{directory}/tests/{test_file}: {list(states)}\n{done.stderr[-2000:]}"
    return next(iter(states.values()))


@pytest.fixture(scope="session")
def module_state(tf_tools, tf_infra) -> dict[str, Any]:
    """The module applied with its defaults (tests/worker.tftest.hcl, mocked provider)."""
    return _state_of(tf_tools, tf_infra / MODULE, "worker.tftest.hcl")


@pytest.fixture(scope="session")
def region_states(tf_tools, tf_infra, region_roots) -> dict[str, dict[str, Any]]:
    """Each region root applied with its own terraform.tfvars (tests/region.tftest.hcl)."""
    return {root.split("/")[1]: _state_of(tf_tools, tf_infra / root, "region.tftest.hcl")
            for root in region_roots}
