"""Fixtures for the offline checks of infra/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.infra import checks
from worker.settings import Settings, env_var_names

INFRA = Path(__file__).resolve().parents[2] / "infra"


@pytest.fixture(scope="session")
def infra_dir() -> Path:
    return INFRA


@pytest.fixture(scope="session")
def infra() -> checks.Infra:
    return checks.load(INFRA)


@pytest.fixture(scope="session")
def worker_env_names() -> frozenset[str]:
    return env_var_names()


@pytest.fixture()
def broken_copy(tmp_path):
    """A copy of infra/ with one exact text replaced; fails if the text is not there once."""

    def make(relative: str, old: str, new: str) -> Path:
        copy = tmp_path / "infra"
        shutil.copytree(INFRA, copy, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
        path = copy / relative
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} should occur once in {relative}"
        path.write_text(text.replace(old, new))
        return copy

    return make


def problems_of(infra_dir: Path) -> list[str]:
    return checks.all_problems(infra_dir, env_var_names(), Settings)
