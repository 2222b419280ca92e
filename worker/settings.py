"""One validated, frozen settings object for every modfleet command.

Each field documents its default and the AWS or model limit it must respect.  Values come from, in
order of precedence: command-line flags, ``MODFLEET_<FIELD>`` environment variables, the AWS CLI's
own variables for the AWS fields (``AWS_REGION``, ``AWS_DEFAULT_REGION``, ``AWS_PROFILE``,
``AWS_ENDPOINT_URL``), the profile's ``region`` in the AWS config file, the defaults below.
``MODFLEET_REGION`` sits above ``AWS_REGION`` because it is the more specific of the two: it names
this fleet's region on a host whose other tools may use another.  Nothing else in the code base
reads the environment: commands build a ``Settings`` once at start-up and pass it down.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import os
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model import config as model_cfg
from model.config import ModelConfig
from model.exceptions import ConfigInvalid
from worker.exceptions import SettingsError

if TYPE_CHECKING:
    from worker.decode import DecodeLimits

ENV_PREFIX = "MODFLEET_"
# The AWS CLI's variables, read after MODFLEET_<FIELD> and in this order (its own precedence).
AWS_ENV = {"region": ("AWS_REGION", "AWS_DEFAULT_REGION"), "profile": ("AWS_PROFILE",),
           "endpoint_url": ("AWS_ENDPOINT_URL",)}
DEFAULT_REGION = "us-east-1"
# What every command that calls AWS takes (commands add the resources they use).
AWS_ACCESS = ("region", "profile", "endpoint_url", "stack")
# Shorter flags beside a field's own (a queue is taken by URL or by name).
FLAG_ALIASES = {"queue_url": ("--queue",), "dlq_url": ("--dlq",), "topic_arn": ("--topic",)}
# botocore's own check of a region name (it refuses others with InvalidRegionError, a traceback).
_REGION_NAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
# An SNS topic ARN's shape (SNS refuses others with InvalidParameter; moto answers a 500 page).
_TOPIC_ARN = re.compile(r"^arn:[a-z0-9-]+:sns:[a-z0-9-]*:[0-9]*:[A-Za-z0-9_.-]+$")
_MODEL = ModelConfig()  # the model layer's defaults are the flags' defaults


def _opt(help_text: str, default: Any, *, group: str, choices: tuple[str, ...] | None = None) -> Any:
    return field(default=default, metadata={"help": help_text, "group": group, "choices": choices})


@dataclass(frozen=True)
class Settings:
    """Every knob of the worker and the operator tools; see README's configuration table."""

    # ---- AWS -------------------------------------------------------------------------------------
    region: str = _opt(
        "AWS region of the queue, bucket and topic; after the variables, the profile's region. "
        "A region botocore does not list needs --endpoint-url.",
        DEFAULT_REGION, group="aws")
    profile: str | None = _opt(
        "Named profile of the AWS config and credentials files. Unset: the default credential "
        "chain (environment, instance role).", None, group="aws")
    endpoint_url: str | None = _opt(
        "Override the AWS endpoint (the embedded stack, or a VPC endpoint). Unset on real AWS.",
        None, group="aws")
    stack: str | None = _opt(
        "Stack whose SSM parameters under /modfleet/<stack>/ give the queue, dead-letter queue, "
        "topic and bucket not set otherwise. Unset: the region's one stack, if there is one.",
        None, group="aws")
    queue_url: str | None = _opt(
        "SQS queue the worker long-polls for S3 video keys: a URL, or a name looked up in the "
        "region.", None, group="aws")
    topic_arn: str | None = _opt("SNS topic that receives the verdicts.", None, group="aws")
    dlq_url: str | None = _opt(
        "Dead-letter queue for poison bodies (URL or name); without it they are left for the "
        "queue's redrive.", None, group="aws")
    autoscaling_group: str | None = _opt(
        "The fleet's Auto Scaling group, for status (the stack's autoscaling-group parameter).",
        None, group="aws")
    bucket: str | None = _opt("The upload bucket (submit; enqueue's bucket of the objects).", None,
                              group="bucket")

    # ---- Queue behaviour (SQS limits in brackets) --------------------------------------------------
    wait_time_s: int = _opt("Long-poll wait per receive [0-20 s].", 20, group="queue")
    max_messages: int = _opt("Messages per receive call [1-10].", 10, group="queue")
    visibility_timeout_s: int = _opt(
        "Visibility set on receive and renewed by each heartbeat [1-43200 s].", 300, group="queue")
    heartbeat_interval_s: int = _opt(
        "Seconds between visibility renewals of an in-flight message; below the visibility timeout.",
        60, group="queue")
    processing_deadline_s: int = _opt(
        "A message not settled this long after receipt is released for another worker.", 900,
        group="queue")
    shutdown_deadline_s: int = _opt(
        "On SIGTERM, seconds to finish in-flight work before releasing it and exiting 0.", 60,
        group="queue")
    max_in_flight: int = _opt(
        "Messages held at once (0: derive as 2 x batch size x replicas), the backpressure bound.", 0,
        group="queue")
    exit_when_idle_s: float = _opt(
        "Stop after the queue has been empty this long (0: run until SIGTERM).", 0.0, group="queue")
    publish_retry_s: float = _opt(
        "Cap on the backoff between SNS publish attempts for one batch.", 20.0, group="queue")
    fatal_after_s: float = _opt(
        "Exit 3 once receives have failed this long in a row, or publishes or deletes have been "
        "refused this long for a cause no retry cures (credentials, a deleted topic or queue, "
        "access denied); held messages are released first [1-86400 s].", 300.0, group="queue")

    # ---- Media -------------------------------------------------------------------------------------
    frames_per_video: int = _opt("Frames sampled uniformly over each video [1-64].",
                                 _MODEL.frames_per_video, group="media")
    frame_size: int = _opt("Frames are letterboxed to a square of this many pixels.",
                           _MODEL.frame_size, group="media")
    max_object_bytes: int = _opt("Larger objects get a too_large verdict, unread.", 2 * 1024**3,
                                 group="media")
    max_duration_s: float = _opt("Longer videos get a too_long verdict.", 3 * 3600.0, group="media")
    max_pixels: int = _opt("Videos with more pixels per frame get too_many_pixels.", 4096 * 2304,
                           group="media")
    ranged_min_bytes: int = _opt(
        "Objects larger than this are read by ranged GETs of their index and sampled packets, "
        "smaller ones in one GET.", 8 * 1024**2, group="media")
    decode_threads: int = _opt("Threads that decode videos (PyAV releases the GIL).", 2, group="media")
    decode_deadline_s: float = _opt(
        "Seconds one video may take to decode before it settles as decode_timeout.", 120.0,
        group="media")

    # ---- Model -------------------------------------------------------------------------------------
    backend: str = _opt("Model backend.", _MODEL.backend, group="model",
                        choices=model_cfg.BACKENDS)
    model_dir: Path | None = _opt(
        "Hugging Face checkpoint directory. Unset: a synthetic checkpoint of --synthetic-preset.",
        None, group="model")
    synthetic_preset: str = _opt("Synthetic checkpoint used when no model directory is given.",
                                 _MODEL.synthetic_preset, group="model",
                                 choices=model_cfg.PRESETS)
    synthetic_arch: str = _opt(
        "Architecture of the synthetic checkpoint (llava_next_video: the family the neuron backend "
        "compiles).", _MODEL.synthetic_arch, group="model", choices=model_cfg.ARCHES)
    compiled_dir: Path | None = _opt("Neuron artifacts written by `modfleet compile`.", None,
                                     group="model")
    device: str = _opt("torch device: cpu, cuda or cuda:N.", _MODEL.device, group="model")
    batch_size: int = _opt("Videos per static batch [1-64].", _MODEL.batch_size, group="model")
    batch_wait_ms: int = _opt("Wait for a full batch before padding a partial one.", 200,
                              group="model")
    replicas: int = _opt("Model replicas, one thread each, each on its own device slot.",
                         _MODEL.replicas, group="model")
    tp_degree: int = _opt("NeuronCores per replica (tensor parallel degree, neuron backend).",
                          _MODEL.tp_degree, group="model")
    quantize: str = _opt("Weight quantization.", _MODEL.quantize, group="model",
                         choices=model_cfg.QUANTIZATIONS)
    mode: str = _opt("score: one prefill pass; generate: free text with a rationale.",
                     _MODEL.mode, group="model", choices=model_cfg.MODES)
    ngram_size: int = _opt("Block repeated n-grams of this size when generating (0: off).",
                           _MODEL.ngram_size, group="model")
    max_new_tokens: int = _opt("Token budget per video in generate mode.", _MODEL.max_new_tokens,
                               group="model")
    policy_file: Path | None = _opt("Moderation policy JSON (unset: the packaged default).", None,
                                    group="model")
    screening: bool = _opt("Run the NudeNet screening stage before the LLM.", False, group="model")
    cascade: bool = _opt("Skip the LLM when screening is decisive.", False, group="model")
    cache_dir: Path = _opt("Synthetic checkpoints and other caches.", _MODEL.cache_dir,
                           group="model")
    paced_batch_ms: float = _opt(
        "Device time per batch of the paced backend, a stand-in accelerator [0-600000 ms].",
        _MODEL.paced_batch_ms, group="model")

    # ---- Known content and re-uploads (issue 21; ARCHITECTURE.md) -----------------------------------
    verdict_table: str | None = _opt(
        "DynamoDB table of verdicts by content SHA-256, model and policy version (else the "
        "stack's verdict-table parameter; unset: the exact-copy cache is off).", None,
        group="reuse")
    verdict_cache_ttl_days: float = _opt(
        "Days a cached verdict is reused (the table's TTL attribute expires_at) [> 0].", 30.0,
        group="reuse")
    records_bucket: str | None = _opt(
        "The region's records bucket: known-content lists and evidence frames (else the stack's "
        "records-bucket parameter; unset: neither).",
        None, group="reuse")
    hashlist_prefix: str = _opt("Prefix of the known-content lists in the records bucket.",
                                "hashlists/", group="reuse")
    hashlist_refresh_s: float = _opt(
        "Seconds between reloads of the known-content lists [> 0].", 300.0, group="reuse")
    fingerprints: bool = _opt(
        "PDQ fingerprints of the sampled frames, stored in verdicts and matched against the "
        "known-content lists and recent verdicts.", True, group="reuse")
    near_duplicate_reuse: str = _opt(
        "Which decisions a re-encode of a recent verdict reuses instead of running the model.",
        "review_block", group="reuse", choices=("none", "review_block", "all"))
    near_duplicate_index_size: int = _opt(
        "Recent model verdicts kept in memory for near-duplicate matching (0: none; only with "
        "a verdict table: reuse is on where the cache is).", 2000, group="reuse")
    near_duplicate_threshold: int = _opt(
        "PDQ distance (of 256 bits) within which two frames are the same picture [0-128].", 31,
        group="reuse")
    evidence: bool = _opt(
        "Write the frames behind review and block labels as JPEG to the records bucket.", True,
        group="reuse")
    evidence_prefix: str = _opt("Prefix of the evidence frames in the records bucket.",
                                "evidence/", group="reuse")
    evidence_kms_key_id: str | None = _opt(
        "KMS key for the evidence frames (SSEKMSKeyId; unset: the bucket's default key).", None,
        group="reuse")

    # ---- Runtime -----------------------------------------------------------------------------------
    worker_id: str = _opt("Identity written into verdicts (default: host name and pid).", "",
                          group="runtime")
    log_format: str = _opt("auto: readable on a terminal, JSON lines otherwise.", "auto",
                           group="runtime", choices=("auto", "json", "console"))
    log_level: str = _opt("Log level.", "info", group="runtime",
                          choices=("debug", "info", "warning", "error"))
    metrics: bool = _opt("Emit CloudWatch embedded-metric-format records on stdout.", True,
                         group="runtime")

    def __post_init__(self) -> None:
        if not self.worker_id:
            object.__setattr__(self, "worker_id", f"{socket.gethostname()}/{os.getpid()}")
        for problem in _problems(self):
            raise SettingsError(problem)

    @property
    def in_flight_limit(self) -> int:
        """Messages held at once: the backpressure bound of the poller."""
        return self.max_in_flight or 2 * self.batch_size * self.replicas

    def with_changes(self, **changes: Any) -> Settings:
        """A validated copy with some fields replaced."""
        return dataclasses.replace(self, **changes)

    def for_stack(self, stack: StackRefs, reuse: bool = False) -> Settings:
        """A copy pointed at one region's stack: its region, endpoint, queue, DLQ and topic, and
        with ``reuse`` its verdict table and records bucket (the cache, lists and evidence)."""
        extra = ({"verdict_table": stack.verdict_table, "records_bucket": stack.records_bucket}
                 if reuse else {})
        return self.with_changes(region=stack.region, endpoint_url=stack.endpoint_url,
                                 queue_url=stack.queue_url, dlq_url=stack.dlq_url,
                                 topic_arn=stack.topic_arn, bucket=stack.bucket, **extra)

    def require(self, *names: str) -> None:
        """Raise SettingsError unless every named field is set (for commands that need them)."""
        missing = [n for n in names if getattr(self, n) in (None, "")]
        if missing:
            flags = ", ".join(f"--{n.replace('_', '-')} (or {env_name(n)})" for n in missing)
            raise SettingsError(f"missing required setting: {flags}")


@dataclass(frozen=True, kw_only=True)
class StackRefs:
    """Where one region's stack lives, as its Terraform outputs or the embedded stack name it;
    ``Settings.for_stack`` is the one projection of it onto the settings."""

    region: str
    bucket: str
    queue_url: str
    dlq_url: str
    topic_arn: str
    endpoint_url: str | None = None
    verdict_table: str | None = None  # the verdict cache (issue 21)
    records_bucket: str | None = None  # known-content lists and evidence frames (issue 21)


def _problems(s: Settings) -> Iterable[str]:
    ranges = {
        "wait_time_s": (0, 20), "max_messages": (1, 10), "visibility_timeout_s": (1, 43200),
        "decode_threads": (1, 64), "heartbeat_interval_s": (1, 43199),
        "shutdown_deadline_s": (1, 3600), "processing_deadline_s": (1, 43200),
    }
    for name, (low, high) in ranges.items():
        value = getattr(s, name)
        if not low <= value <= high:
            yield f"{name.replace('_', '-')} must be between {low} and {high}, got {value}"
    if s.heartbeat_interval_s >= s.visibility_timeout_s:
        yield (f"heartbeat-interval-s ({s.heartbeat_interval_s}) must be shorter than "
               f"visibility-timeout-s ({s.visibility_timeout_s}), or messages reappear mid-work")
    if s.max_in_flight and s.max_in_flight < s.batch_size:
        yield f"max-in-flight ({s.max_in_flight}) must be at least batch-size ({s.batch_size})"
    if min(s.max_object_bytes, s.max_pixels) < 1 or min(s.max_duration_s,
                                                          s.decode_deadline_s) <= 0:
        yield "max-object-bytes, max-pixels, max-duration-s and decode-deadline-s must be positive"
    if s.ranged_min_bytes < 0:
        yield "ranged-min-bytes must be 0 or more"
    if s.verdict_cache_ttl_days <= 0 or s.hashlist_refresh_s <= 0:
        yield "verdict-cache-ttl-days and hashlist-refresh-s must be positive"
    if s.near_duplicate_index_size < 0 or not 0 <= s.near_duplicate_threshold <= 128:
        yield ("near-duplicate-index-size must be 0 or more and near-duplicate-threshold "
               "within 0-128")
    for name in ("hashlist_prefix", "evidence_prefix"):
        if getattr(s, name) and not getattr(s, name).endswith("/"):
            yield f"{name.replace('_', '-')} must end with '/', got {getattr(s, name)!r}"
    try:
        model_config(s)
    except ConfigInvalid as exc:  # the model layer's own limits, named by their flags
        yield str(exc)
    if s.batch_wait_ms < 0 or s.exit_when_idle_s < 0 or s.publish_retry_s <= 0:
        yield "batch-wait-ms and exit-when-idle-s must be >= 0, publish-retry-s > 0"
    if not 1 <= s.fatal_after_s <= 86400:
        yield f"fatal-after-s must be between 1 and 86400, got {s.fatal_after_s}"
    if (problem := region_problem(s.region, s.endpoint_url)) is not None:
        yield problem
    if s.endpoint_url and (problem := endpoint_problem(s.endpoint_url)) is not None:
        yield problem
    if s.topic_arn and not _TOPIC_ARN.match(s.topic_arn):
        yield (f"topic-arn {s.topic_arn!r} is not an SNS topic ARN "
               f"(arn:aws:sns:REGION:ACCOUNT:NAME)")


def region_problem(region: str, endpoint_url: str | None, source: str = "--region") -> str | None:
    """Why ``region`` (from ``source``) cannot be used, or None: a malformed name always; a
    well-formed one that botocore's partitions do not list unless an endpoint URL says where."""
    if not _REGION_NAME.match(region):
        return f"{source} {region!r} is not a region name (like us-east-1)"
    if endpoint_url or region in known_regions():
        return None
    swapped = [r for r in sorted(known_regions()) if sorted(r) == sorted(region)]  # a typo'd pair
    near = swapped or difflib.get_close_matches(region, sorted(known_regions()), n=1)
    hint = f" (did you mean {near[0]}?)" if near else ""
    return (f"{source} {region!r} is not a region botocore knows{hint}; a region it does not list "
            f"needs --endpoint-url")


def endpoint_problem(url: str, source: str = "--endpoint-url") -> str | None:
    """Why ``url`` (from ``source``) cannot be an endpoint, or None: botocore accepts only an
    http(s) URL with a host name or IP address, and refuses others with a ValueError (a
    traceback)."""
    from urllib.parse import urlsplit

    from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

    if urlsplit(url).scheme in ("http", "https") and (
            is_valid_endpoint_url(url) or is_valid_ipv6_endpoint_url(url)):
        return None
    return f"{source} {url!r} is not an endpoint URL (like http://127.0.0.1:5000)"


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region of every partition in botocore's endpoint data (SQS's list: each region has
    SQS)."""
    import botocore.session

    session = botocore.session.get_session()
    return frozenset(region for partition in session.get_available_partitions()
                     for region in session.get_available_regions("sqs", partition))


def model_config(s: Settings) -> ModelConfig:
    """The model layer's configuration: the one place worker settings reach the model layer."""
    return ModelConfig(
        backend=s.backend, model_dir=s.model_dir, synthetic_preset=s.synthetic_preset,
        synthetic_arch=s.synthetic_arch,
        compiled_dir=s.compiled_dir, device=s.device, batch_size=s.batch_size,
        replicas=s.replicas, tp_degree=s.tp_degree, quantize=s.quantize, mode=s.mode,
        ngram_size=s.ngram_size, max_new_tokens=s.max_new_tokens, policy_file=s.policy_file,
        screening=s.screening, cascade=s.cascade, cache_dir=s.cache_dir,
        frames_per_video=s.frames_per_video, frame_size=s.frame_size,
        reserved_cpu_cores=s.decode_threads, paced_batch_ms=s.paced_batch_ms)


def decode_limits(s: Settings) -> DecodeLimits:
    """The decoder's limits: the one place worker settings reach the frame sampler."""
    # Imported here: settings are read by every command, PyAV and numpy only by those that decode.
    from worker.decode import DecodeLimits

    return DecodeLimits(frames=s.frames_per_video, size=s.frame_size,
                        max_duration_s=s.max_duration_s, max_pixels=s.max_pixels,
                        deadline_s=s.decode_deadline_s)


# ---- Building from flags and environment -----------------------------------------------------------

def env_name(field_name: str) -> str:
    """The environment variable that sets a field, e.g. queue_url -> MODFLEET_QUEUE_URL."""
    return ENV_PREFIX + field_name.upper()


def env_var_names() -> frozenset[str]:
    """Every environment variable the settings read (infra's user data is checked against it)."""
    return frozenset(env_name(f.name) for f in fields(Settings))


def field_groups(*groups: str) -> list[str]:
    """Names of the fields in the given groups, in declaration order."""
    return [f.name for f in fields(Settings) if f.metadata["group"] in groups]


def add_arguments(parser: argparse.ArgumentParser, names: Iterable[str]) -> None:
    """Add one ``--flag`` per named field; defaults stay None so env and defaults can apply."""
    by_name = {f.name: f for f in fields(Settings)}
    for name in names:
        f = by_name[name]
        flags = ("--" + name.replace("_", "-"), *FLAG_ALIASES.get(name, ()))
        env = " or ".join((env_name(name), *AWS_ENV.get(name, ())))
        help_text = f"{f.metadata['help']} [env {env}; default {f.default}]"
        if _base_type(f) is bool:
            parser.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction,
                                default=None, help=help_text)
        else:
            parser.add_argument(*flags, dest=name, default=None, choices=f.metadata["choices"],
                                help=help_text, metavar=None if f.metadata["choices"] else "VALUE")


def from_sources(args: argparse.Namespace | Mapping[str, Any] | None = None,
                 environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from flags, then MODFLEET_* variables, then the AWS CLI's variables and the
    profile's region, then defaults; validate once."""
    given = {**_given(args), **{k: v for k, v in overrides.items() if v is not None}}
    environ = os.environ if environ is None else environ
    if isinstance(args, argparse.Namespace) and not hasattr(args, "region"):
        # A command without AWS flags (compile, synthetic-checkpoint) calls no AWS: the AWS
        # settings' variables (the AWS CLI's and MODFLEET_REGION and its kin) are not its
        # business, and a stale AWS_PROFILE or MODFLEET_PROFILE must not stop it.
        ignored = {env_name(name) for name in AWS_ACCESS}
        environ = {name: value for name, value in environ.items()
                   if not name.startswith("AWS_") and name not in ignored}
    values = {f.name: _value(f, given, environ) for f in fields(Settings)}
    # Also checks that the profile exists, naming where it came from.
    region = profile_region(values["profile"], environ, _source("profile", given, environ))
    if values["region"] is not None:
        problem = region_problem(values["region"], values["endpoint_url"],
                                 _source("region", given, environ))
        if problem is not None:
            raise SettingsError(problem)
    values["region"] = values["region"] or region
    if values["endpoint_url"] is not None and (problem := endpoint_problem(
            values["endpoint_url"], _source("endpoint_url", given, environ))) is not None:
        raise SettingsError(problem)
    if _source("endpoint_url", given, environ) == "AWS_ENDPOINT_URL" and any(
            name.startswith("AWS_ENDPOINT_URL_") and value for name, value in environ.items()):
        # AWS_ENDPOINT_URL_<SERVICE> beats AWS_ENDPOINT_URL, per service: botocore applies both
        # itself when no endpoint is passed.
        values["endpoint_url"] = None
    return Settings(**{name: value for name, value in values.items() if value is not None})


def profile_region(profile: str | None, environ: Mapping[str, str],
                   source: str = "--profile") -> str | None:
    """The ``region`` of the profile in the AWS config file, as the AWS CLI reads it; None when it
    has none.  An unknown profile is a SettingsError naming where it was looked for."""
    import botocore.session
    from botocore.exceptions import ProfileNotFound

    session = botocore.session.Session()
    config_file = environ.get("AWS_CONFIG_FILE", "~/.aws/config")
    session.set_config_variable("config_file", config_file)
    session.set_config_variable(
        "credentials_file", environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"))
    if profile is None and "default" not in session.available_profiles:
        return None
    session.set_config_variable("profile", profile or "default")
    try:
        return session.get_scoped_config().get("region")
    except ProfileNotFound:
        known = ", ".join(session.available_profiles) or "none"
        raise SettingsError(f"{source} {profile}: no such profile in {config_file} or the "
                            f"credentials file (profiles there: {known})") from None


def field_value(name: str, args: argparse.Namespace | Mapping[str, Any] | None = None,
                default: Any = None, environ: Mapping[str, str] | None = None) -> Any:
    """One field from its flag, then its MODFLEET_* variable, then ``default``, then the field's
    own default; coerced and checked against its choices (for what is needed before Settings)."""
    f = next(f for f in fields(Settings) if f.name == name)
    value = _value(f, _given(args), os.environ if environ is None else environ)
    if value is None:
        value = f.default if default is None else default
    return value


def _given(args: argparse.Namespace | Mapping[str, Any] | None) -> dict[str, Any]:
    return vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})


def _value(f: dataclasses.Field, given: Mapping[str, Any], environ: Mapping[str, str]) -> Any:
    """The flag's value, else the environment's (MODFLEET_*, then the AWS CLI's), coerced; None
    when none is set.  An empty variable counts as unset, as in the AWS CLI."""
    raw, source = given.get(f.name), f"--{f.name.replace('_', '-')}"
    for name in (env_name(f.name), *AWS_ENV.get(f.name, ())):
        if raw is not None:
            break
        if environ.get(name):
            raw, source = environ[name], name
    return None if raw is None else _coerce(f, raw, source)


def _source(name: str, given: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """Where a field's value comes from: its flag, or the first variable set (for messages)."""
    if given.get(name) is not None:
        return f"--{name.replace('_', '-')}"
    return next((var for var in (env_name(name), *AWS_ENV.get(name, ())) if environ.get(var)),
                f"--{name.replace('_', '-')}")


def _base_type(f: dataclasses.Field) -> type:
    text = str(f.type)
    for name, kind in (("bool", bool), ("int", int), ("float", float), ("Path", Path)):
        if text.startswith(name):
            return kind
    return str


def _coerce(f: dataclasses.Field, raw: Any, source: str) -> Any:
    kind = _base_type(f)
    if not isinstance(raw, str) or kind is str:
        value = raw
    elif kind is bool:
        if raw.strip().lower() not in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            raise SettingsError(f"{source}: expected true or false, got {raw!r}")
        value = raw.strip().lower() in {"1", "true", "yes", "on"}
    else:
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(f"{source}: expected {kind.__name__}, got {raw!r}") from None
    if (choices := f.metadata["choices"]) and value not in choices:
        raise SettingsError(f"{source}: must be one of {', '.join(choices)}, got {value!r}")
    if value == "" and f.default is None:
        return None
    return value
