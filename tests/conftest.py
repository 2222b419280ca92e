"""Shared fixtures: one embedded AWS server per test session, a fresh stack per test, media."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tools.lab.embedded_aws import EmbeddedAws, StackInfo, provision
from tools.lab.sample_videos import media_folder

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
    """Copies of the real sample videos in ../shared/media (read-only there); generated stand-ins
    of the same names where that folder is absent, so every test runs on any clone."""
    return media_folder(SHARED_MEDIA, tmp_path_factory.mktemp("media"))
