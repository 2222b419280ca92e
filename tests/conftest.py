"""Shared fixtures: one embedded AWS server per test session, a fresh stack per test."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

from tools.embedded_aws import EmbeddedAws, StackInfo, provision

ROOT = Path(__file__).resolve().parents[1]
SHARED_MEDIA = ROOT.parent / "shared" / "media"
_stack_names = itertools.count()


@pytest.fixture(scope="session")
def embedded_aws():
    with EmbeddedAws() as aws:
        yield aws


@pytest.fixture()
def stack(embedded_aws) -> StackInfo:
    """A freshly provisioned stack (own bucket, queues, topic) on the shared moto server."""
    return provision(embedded_aws.endpoint_url, name=f"t{next(_stack_names)}")


@pytest.fixture(scope="session")
def shared_media(tmp_path_factory) -> Path:
    """Copies of the real sample videos in ../shared/media (read-only there)."""
    if not SHARED_MEDIA.is_dir():
        pytest.skip(f"real sample videos not found at {SHARED_MEDIA}")
    target = tmp_path_factory.mktemp("media")
    for path in SHARED_MEDIA.iterdir():
        if path.suffix in {".mp4", ".mkv", ".mov", ".webm"}:
            shutil.copy(path, target / path.name)
    return target
