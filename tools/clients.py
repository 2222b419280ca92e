"""boto3 clients for the tools, from the same settings and configuration as the worker's."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from worker.aws import client_kwargs
from worker.settings import Settings


def client(service: str, settings: Settings, *, max_attempts: int | None = None) -> Any:
    """A boto3 client for ``service``; ``max_attempts`` lowers retries for calls where a refusal
    is an answer, not a transient fault (StartMessageMoveTask on an endpoint that lacks it)."""
    kwargs = client_kwargs(settings.region, settings.endpoint_url)
    if max_attempts is not None:
        kwargs["config"] = kwargs["config"].merge(
            Config(retries={"mode": "standard", "max_attempts": max_attempts}))
    return boto3.session.Session().client(service, **kwargs)
