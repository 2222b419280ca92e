"""Where a command's AWS resources are, found once at start-up, and the worker's check of them.

``resolve()`` projects a stack's SSM parameters (``/modfleet/<stack>/queue-url`` and the others of
README "AWS settings") onto the one ``Settings`` object, where a flag or variable has not
set them already, and turns queue names into URLs (GetQueueUrl in the region).
``check_worker_access()`` then asks AWS, before the worker loads its model, whether the queue and
dead-letter queue answer and the topic exists (which tries the credentials too): a wrong setting
stops the worker with one line naming it (exit 2), an endpoint it cannot reach with exit 3.  ``check_access()`` is
the same check of any of those settings (and the bucket) for the operator tools.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from worker.aws import settings_client
from worker.errors_aws import AWS_ERRORS, is_incurable, is_not_found, is_refused, one_line
from worker.exceptions import AwsSettingRejected, AwsUnavailable, SettingsError
from worker.settings import Settings, env_name

SSM_PREFIX = "/modfleet/"
# Settings a stack fills, by the name of their parameter under /modfleet/<stack>/.
STACK_PARAMETERS = {"queue_url": "queue-url", "dlq_url": "dlq-url", "topic_arn": "topic-arn",
                    "bucket": "bucket", "autoscaling_group": "autoscaling-group",
                    "verdict_table": "verdict-table", "records_bucket": "records-bucket"}
# evidence-prefix and hashlist-prefix are written too (infra/README.md, the stack parameters) but not read: their values
# are the settings' defaults, "evidence/" and "hashlists/".
QUEUE_SETTINGS = ("queue_url", "dlq_url")
ClientFactory = Callable[..., Any]  # (service, settings) -> a boto3 client


def resolve(settings: Settings, needs: Iterable[str] = (),
            client: ClientFactory = settings_client) -> Settings:
    """``settings`` with the stack's resources filled in and queue names made URLs.

    The stack is ``settings.stack``; without one, and only when a setting in ``needs`` is unset,
    the region's one stack (the only name under ``/modfleet/``).  Then every name in ``needs`` must
    be set (SettingsError naming its flag and variable otherwise).
    """
    needs = tuple(needs)
    missing = [name for name in needs if getattr(settings, name) in (None, "")]
    why_no_stack = ""
    if settings.stack or missing:
        settings, why_no_stack = _with_stack(settings, client("ssm", settings),
                                             quiet=not settings.stack)
    try:
        settings.require(*needs)
    except SettingsError as exc:
        raise SettingsError(f"{exc}; or --stack (or {env_name('stack')}): {why_no_stack}"
                            if why_no_stack else str(exc)) from None
    return _with_queue_urls(settings, client)


def stack_parameters(ssm: Any, stack: str) -> dict[str, str]:
    """The parameters under ``/modfleet/<stack>/``, by their last path segment."""
    prefix = f"{SSM_PREFIX}{stack}/"
    paginator = ssm.get_paginator("get_parameters_by_path")
    return {p["Name"][len(prefix):]: p["Value"]
            for page in paginator.paginate(Path=prefix, Recursive=False)
            for p in page.get("Parameters", [])}


def stack_names(ssm: Any) -> list[str]:
    """The stacks with parameters in this region: the first segment under ``/modfleet/``."""
    paginator = ssm.get_paginator("get_parameters_by_path")
    return sorted({p["Name"][len(SSM_PREFIX):].split("/", 1)[0]
                   for page in paginator.paginate(Path=SSM_PREFIX, Recursive=True)
                   for p in page.get("Parameters", [])})


def _with_stack(settings: Settings, ssm: Any, quiet: bool) -> tuple[Settings, str]:
    """Fill the stack's settings; ``quiet``: no stack was asked for, so finding none (or not
    being able to look) leaves the settings as they are, with the reason, for ``require`` to name
    what is missing."""
    try:
        stack = settings.stack or _only_stack(ssm, settings.region)
        values = stack_parameters(ssm, stack)
    except AWS_ERRORS as exc:
        if quiet:
            return settings, f"the region's stacks could not be listed ({one_line(exc)})"
        raise _rejected_or_unavailable(exc, f"--stack {settings.stack}", "SSM parameters",
                                       settings) from None
    except SettingsError as exc:
        if quiet:
            return settings, str(exc)
        raise
    if not values:
        raise SettingsError(f"--stack {stack}: no parameters under {SSM_PREFIX}{stack}/ in "
                            f"{settings.region} (stacks there: "
                            f"{', '.join(stack_names(ssm)) or 'none'})")
    fill = {name: values[parameter] for name, parameter in STACK_PARAMETERS.items()
            if getattr(settings, name) in (None, "") and values.get(parameter)}
    return settings.with_changes(stack=stack, **fill), ""


def _only_stack(ssm: Any, region: str) -> str:
    names = stack_names(ssm)
    if len(names) == 1:
        return names[0]
    if not names:
        raise SettingsError(f"no stack in {region}: nothing under {SSM_PREFIX}")
    raise SettingsError(f"{len(names)} stacks in {region} ({', '.join(names)}): pick one with "
                        f"--stack (or {env_name('stack')})")


def _with_queue_urls(settings: Settings, client: ClientFactory) -> Settings:
    names = {name: getattr(settings, name) for name in QUEUE_SETTINGS
             if getattr(settings, name) and not _is_url(getattr(settings, name))}
    if not names:
        return settings
    sqs = client("sqs", settings)
    return settings.with_changes(**{name: _queue_url(sqs, name, value, settings)
                                    for name, value in names.items()})


def _queue_url(sqs: Any, setting: str, name: str, settings: Settings) -> str:
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except AWS_ERRORS as exc:
        raise _rejected_or_unavailable(exc, f"{_flag(setting)} {name}", "queue",
                                       settings) from None


def _is_url(value: str) -> bool:
    return value.startswith(("https://", "http://"))


def _flag(setting: str) -> str:
    return "--" + setting.replace("_", "-")


# ---- the worker's start-up check ----------------------------------------------------------------

def check_worker_access(settings: Settings, client: ClientFactory = settings_client) -> None:
    """Before the model loads: the queue and dead-letter queue answer (GetQueueAttributes) and the
    topic exists (GetTopicAttributes; nothing is sent).  The first call also tries the
    credentials: none, unknown or expired ones are refused there, named as credentials.  (No STS
    GetCallerIdentity: it would add an endpoint the fleet's private subnets need not reach.)

    ``AwsSettingRejected`` (exit 2) names the setting AWS refuses, ``AwsUnavailable`` (exit 3) the
    endpoint it cannot reach.
    """
    check_access(settings, "queue_url", "dlq_url", "topic_arn", client=client)


def check_access(settings: Settings, *names: str, client: ClientFactory = settings_client) -> None:
    """Each named setting that is set answers: a queue (GetQueueAttributes), the topic
    (GetTopicAttributes) or the bucket (HeadBucket); as ``check_worker_access``."""
    services = {"queue_url": "sqs", "dlq_url": "sqs", "topic_arn": "sns", "bucket": "s3"}
    names = tuple(name for name in names if getattr(settings, name))  # no client for an unset one
    clients = {service: client(service, settings)
               for service in {services[name] for name in names}}
    for name in names:
        value = getattr(settings, name)
        service = clients[services[name]]
        if services[name] == "sqs":
            call, what = partial(service.get_queue_attributes, QueueUrl=value,
                                 AttributeNames=["QueueArn"]), "queue"
        elif services[name] == "sns":
            call, what = partial(service.get_topic_attributes, TopicArn=value), "topic"
        else:
            call, what = partial(service.head_bucket, Bucket=value), "bucket"
        _probe(settings, _flag(name), value, what, call)


def _probe(settings: Settings, setting: str, value: str, what: str,
           call: Callable[[], Any]) -> None:
    try:
        call()
    except AWS_ERRORS as exc:
        raise _rejected_or_unavailable(exc, f"{setting} {value}", what, settings) from None


def _rejected_or_unavailable(exc: BaseException, subject: str, what: str,
                             settings: Settings) -> Exception:
    """One line for what went wrong, as the exception class that carries its exit code."""
    where = settings.region + (f" at {settings.endpoint_url}" if settings.endpoint_url else "")
    if is_not_found(exc):
        return AwsSettingRejected(f"{subject}: {what} not found in {where} ({one_line(exc)})")
    if is_refused(exc):
        from botocore.exceptions import NoCredentialsError, PartialCredentialsError

        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return AwsSettingRejected(
                f"no AWS credentials ({one_line(exc)}): set --profile (or AWS_PROFILE), "
                f"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with an instance role")
        return AwsSettingRejected(f"{subject}: refused in {where} ({one_line(exc)}); check the "
                                  f"credentials (--profile) and their permissions")
    if is_incurable(exc):
        return AwsSettingRejected(f"{subject}: {one_line(exc)}")
    return AwsUnavailable(f"AWS did not answer in {where} after retries ({one_line(exc)}); "
                          f"asked about {subject}")
