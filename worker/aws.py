"""AWS clients, built in one place from the settings and injected everywhere else.

The worker's hot path uses aiobotocore on one asyncio loop; operator tools use boto3.  Both get the
same region, profile, endpoint and retry configuration, so ``--endpoint-url`` points a whole
command at the embedded stack and ``--profile`` picks the credentials of the AWS config files.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode already backs off on throttling and 5xx; the worker adds its own tenacity
# policies above this for the cases that need a decision (publish before delete).
CLIENT_OPTIONS: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 4},
                                  "connect_timeout": 5, "read_timeout": 30,
                                  "max_pool_connections": 32}
BOTO_CONFIG = Config(**CLIENT_OPTIONS)

# The embedded stack accepts any credentials; real AWS uses the normal provider chain.
LOCAL_CREDENTIALS = {"aws_access_key_id": "modfleet", "aws_secret_access_key": "modfleet"}


def client_kwargs(region: str, endpoint_url: str | None) -> dict[str, Any]:
    """Arguments shared by boto3 and aiobotocore client constructors."""
    kwargs: dict[str, Any] = {"region_name": region, "config": BOTO_CONFIG}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
        if _is_loopback(endpoint_url):
            kwargs.update(LOCAL_CREDENTIALS)
    return kwargs


def boto3_client(service: str, region: str, endpoint_url: str | None = None, *,
                 profile: str | None = None, max_attempts: int | None = None,
                 verify: str | None = None) -> Any:
    """A synchronous boto3 client: the one factory of the operator tools, the lab and the tests.

    ``profile`` names a profile of the AWS config files (None: the default chain);
    ``max_attempts`` lowers retries for calls where a refusal is an answer, not a transient fault
    (StartMessageMoveTask on an endpoint that lacks it); ``verify`` is a CA bundle to trust (the
    embedded stack over TLS).
    """
    kwargs = client_kwargs(region, endpoint_url)
    if max_attempts is not None:
        kwargs["config"] = kwargs["config"].merge(
            Config(retries={"mode": "standard", "max_attempts": max_attempts}))
    if verify is not None:
        kwargs["verify"] = verify
    # A session per client: boto3 sessions are not safe to share between threads.
    return boto3.session.Session(profile_name=profile).client(service, **kwargs)


def settings_client(service: str, settings: Any, **options: Any) -> Any:
    """``boto3_client`` for the region, endpoint and profile of a ``Settings``."""
    return boto3_client(service, settings.region, settings.endpoint_url,
                        profile=settings.profile, **options)


def _is_loopback(url: str) -> bool:
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    return host in {"localhost", "::1"} or host.startswith("127.")


class AsyncClients:
    """The worker's aiobotocore clients (SQS, S3, SNS, DynamoDB) for one asyncio loop.

    Use as ``async with AsyncClients(region, endpoint_url) as clients:``; tests and the demo may
    pass clients of their own instead.
    """

    def __init__(self, region: str, endpoint_url: str | None = None,
                 profile: str | None = None) -> None:
        self._kwargs = client_kwargs(region, endpoint_url)
        self._profile = profile
        self._stack: Any = None
        self.sqs: Any = None
        self.s3: Any = None
        self.sns: Any = None
        self.dynamodb: Any = None  # the verdict cache (worker/verdict_cache.py)

    async def __aenter__(self) -> AsyncClients:
        from contextlib import AsyncExitStack

        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        kwargs = dict(self._kwargs)
        kwargs["config"] = AioConfig(**CLIENT_OPTIONS)  # the same options as BOTO_CONFIG
        # The verdict cache is a shortcut: a lookup that cannot answer soon is a miss and the model
        # runs, so its client gives up after one retry and short timeouts instead of backing off
        # for seconds per video while DynamoDB is failing.
        cache_kwargs = dict(kwargs, config=AioConfig(**{
            **CLIENT_OPTIONS, "retries": {"mode": "standard", "max_attempts": 2},
            "connect_timeout": 2, "read_timeout": 5}))
        session = get_session()
        if self._profile:
            session.set_config_variable("profile", self._profile)
        self._stack = AsyncExitStack()
        await self._stack.__aenter__()
        for service in ("sqs", "s3", "sns", "dynamodb"):
            client = await self._stack.enter_async_context(session.create_client(
                service, **(cache_kwargs if service == "dynamodb" else kwargs)))
            setattr(self, service, client)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.__aexit__(*exc)
