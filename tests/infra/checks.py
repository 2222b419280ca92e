"""Offline checks of infra/: each check returns the problems it finds, an empty list when it holds.

The same functions run on the real infra/ (tests/infra/test_infra_checks.py) and on broken copies of
it (tests/infra/test_infra_checks_catch.py), so a check that silently passes everything is caught.
HCL is read with python-hcl2; expressions inside ``${...}`` stay text, and the few numbers the
cross-checks need are evaluated by a small evaluator that knows only ``var.*``, ``local.*``,
arithmetic and ``coalesce``.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import yaml
from hcl2 import SerializationOptions

from model.neuron_sdk import SDK_RELEASE
from worker.exceptions import SettingsError

MODULE = Path("modules/region-stack")
TEMPLATE = MODULE / "templates" / "cloud-init.yaml.tftpl"
_HCL = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)

# What `modfleet worker` and the instance's own scripts call, and on which resource each may act.
QUEUE, DLQ = "${aws_sqs_queue.this.arn}", "${aws_sqs_queue.dlq.arn}"
UPLOAD_OBJECTS = "${aws_s3_bucket.uploads.arn}/*"
TOPIC, KEY = "${aws_sns_topic.verdicts.arn}", "${aws_kms_key.this.arn}"
LOG_GROUP = "${aws_cloudwatch_log_group.worker.arn}"
ARTIFACTS = "arn:${local.partition}:s3:::${var.model_artifacts.bucket}"
ALLOWED_WORKER_ACTIONS: dict[str, set[str]] = {
    "sqs:ReceiveMessage": {QUEUE},
    "sqs:DeleteMessage": {QUEUE},
    "sqs:DeleteMessageBatch": {QUEUE},
    "sqs:ChangeMessageVisibility": {QUEUE},
    "sqs:ChangeMessageVisibilityBatch": {QUEUE},
    "sqs:GetQueueAttributes": {QUEUE, DLQ},
    "sqs:SendMessage": {DLQ},
    "s3:GetObject": {
        UPLOAD_OBJECTS,
        ARTIFACTS + "/${local.artifacts_prefix}/*",
        ARTIFACTS + "/${local.wheelhouse_prefix}/*",  # cloud-init installs modfleet from there
    },
    "s3:GetObjectVersion": {UPLOAD_OBJECTS},
    # Lets a missing key read as 404 NoSuchKey (settled) rather than 403 (retried to the DLQ).
    "s3:ListBucket": {"${aws_s3_bucket.uploads.arn}", ARTIFACTS},
    "sns:Publish": {TOPIC},
    "kms:Decrypt": {KEY, "${var.model_artifacts.kms_key_arn}"},
    "kms:GenerateDataKey": {KEY, "${var.model_artifacts.kms_key_arn}"},
    "logs:CreateLogStream": {LOG_GROUP, LOG_GROUP + ":*"},
    "logs:PutLogEvents": {LOG_GROUP, LOG_GROUP + ":*"},
    "logs:DescribeLogStreams": {LOG_GROUP, LOG_GROUP + ":*"},
    "autoscaling:CompleteLifecycleAction": {"${local.asg_arn_pattern}"},
}
REQUIRED_ENVIRONMENT = {
    "MODFLEET_QUEUE_URL",
    "MODFLEET_TOPIC_ARN",
    "MODFLEET_DLQ_URL",
    "MODFLEET_REGION",
}
# Worker settings whose values the stack sets and the timing cross-checks compare.
TIMING_SETTINGS = (
    "visibility_timeout_s",
    "heartbeat_interval_s",
    "processing_deadline_s",
    "shutdown_deadline_s",
)
NEURON_CORES = {"inf2.xlarge": 2, "inf2.8xlarge": 2, "inf2.24xlarge": 12, "inf2.48xlarge": 24}
SQS_MAX_VISIBILITY_S = 43200
WORKER_UNIT = "/etc/systemd/system/modfleet-worker.service"
INSTALL_SCRIPT = "/opt/modfleet/bin/install-worker"
SETUP_CFG = Path(__file__).resolve().parents[2] / "setup.cfg"
# The DLAMI environment with transformers-neuronx at Neuron SDK 2.25 (aws-neuron/aws-neuron-sdk
# dlami/index.rst at e52d322, the 2.25.0 docs).
NEURON_VENV_PREFIX = "/opt/aws_neuronx_venv_"


# ---- Loading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Infra:
    """The parsed infra/ tree: the module's blocks, each region root's blocks and tfvars."""

    path: Path
    module: dict[str, Any]
    roots: dict[str, dict[str, Any]]
    tfvars: dict[str, dict[str, Any]]
    template: str

    def resource(self, kind: str, name: str) -> dict[str, Any]:
        return self.module["resource"].get(kind, {}).get(name, {})

    def data(self, kind: str, name: str) -> dict[str, Any]:
        return self.module["data"].get(kind, {}).get(name, {})

    @property
    def locals(self) -> dict[str, Any]:
        return self.module["locals"]

    @property
    def variables(self) -> dict[str, Any]:
        return self.module["variable"]


def load(infra: Path) -> Infra:
    """Parse the module, every root under regions/, their tfvars and the user-data template."""
    roots, tfvars = {}, {}
    for root in sorted((infra / "regions").iterdir()):
        if root.is_dir():
            roots[root.name] = _load_dir(root)
            tfvars_file = root / "terraform.tfvars"
            tfvars[root.name] = _parse(tfvars_file) if tfvars_file.exists() else {}
    return Infra(infra, _load_dir(infra / MODULE), roots, tfvars, (infra / TEMPLATE).read_text())


def _parse(path: Path) -> dict[str, Any]:
    return copy.deepcopy(_parse_text(path.read_text()))


@functools.lru_cache(maxsize=64)
def _parse_text(text: str) -> dict[str, Any]:
    # Parsing is the slow part (about 1 s for main.tf); broken copies change one file only.
    return hcl2.loads(text, serialization_options=_HCL)


def _load_dir(directory: Path) -> dict[str, Any]:
    """Blocks of every .tf file of a directory, keyed as Terraform addresses them."""
    merged: dict[str, Any] = {
        "resource": {},
        "data": {},
        "locals": {},
        "variable": {},
        "output": {},
        "module": {},
        "terraform": [],
        "provider": [],
    }
    for path in sorted(directory.glob("*.tf")):
        for kind, blocks in _parse(path).items():
            for block in blocks:
                if kind in ("resource", "data"):
                    for rtype, named in block.items():
                        merged[kind].setdefault(rtype, {}).update(named)
                elif kind in ("locals", "variable", "output", "module"):
                    merged[kind].update(block)
                else:
                    merged.setdefault(kind, []).append(block)
    return merged


# ---- Small helpers -------------------------------------------------------------------------------


def _one(block: Any) -> dict[str, Any]:
    """A nested block as a dict (hcl2 gives a list of one); {} when absent."""
    if isinstance(block, list):
        return block[0] if block else {}
    return block or {}


def _all(block: Any) -> list[dict[str, Any]]:
    if block is None:
        return []
    return block if isinstance(block, list) else [block]


def _dynamic(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The dynamic block called name, with its for_each and content."""
    for entry in _all(body.get("dynamic")):
        if name in entry:
            return entry[name]
    return {}


def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return _all(doc.get("statement"))


def object_defaults(type_expr: str) -> dict[str, Any]:
    """Defaults of an ``object({name = optional(type, default), ...})`` type expression."""
    body = type_expr.strip()
    body = body[body.index("({") + 2 : body.rindex("})")]
    defaults: dict[str, Any] = {}
    for field in _split_top(body):
        name, _, spec = field.partition("=")
        spec = spec.strip()
        if spec.startswith("optional(") and spec.endswith(")"):
            args = _split_top(spec[len("optional(") : -1])
            defaults[name.strip()] = json.loads(args[1]) if len(args) > 1 else None
    return defaults


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split at sep outside brackets and strings."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == '"' and text[i - 1 : i] != "\\":
            quoted = not quoted
        elif not quoted and ch in "([{":
            depth += 1
        elif not quoted and ch in ")]}":
            depth -= 1
        elif not quoted and depth == 0 and ch == sep:
            parts.append(text[start:i].strip())
            start = i + 1
    if text[start:].strip():
        parts.append(text[start:].strip())
    return parts


def effective_inputs(infra: Infra, region: str) -> dict[str, dict[str, Any]]:
    """Each object variable of the module as a region root passes it: defaults, then tfvars."""
    inputs: dict[str, dict[str, Any]] = {}
    for name, spec in infra.variables.items():
        if str(spec.get("type", "")).startswith("${object("):
            values = object_defaults(spec["type"][2:-1])
            if isinstance(spec.get("default"), dict):
                values.update(spec["default"])
            values.update(infra.tfvars.get(region, {}).get(name) or {})
            inputs[name] = values
    return inputs


_REF = re.compile(r"\b(var|local)\.([a-z_][a-z0-9_]*)(?:\.([a-z_][a-z0-9_]*))?")


def evaluate(expr: Any, infra: Infra, inputs: dict[str, dict[str, Any]], depth: int = 0) -> Any:
    """Value of a numeric expression: numbers, var.obj.field, local.name, + - * /, coalesce."""
    if not isinstance(expr, str):
        return expr
    text = expr[2:-1] if expr.startswith("${") and expr.endswith("}") else expr
    if depth > 10:
        raise ValueError(f"locals nest too deep at {expr!r}")

    def value_of(match: re.Match[str]) -> str:
        kind, name, field = match.groups()
        if kind == "var":
            value = inputs.get(name, {}).get(field) if field else None
        else:
            value = evaluate(infra.locals[name], infra, inputs, depth + 1)
        return repr(value)

    python = _REF.sub(value_of, text)
    if not re.fullmatch(r"[\d\s+\-*/().,]*", re.sub(r"\b(coalesce|None)\b", "", python)):
        raise ValueError(f"cannot evaluate {expr!r} offline (became {python!r})")
    # Safe: the text holds only numbers, operators, None and coalesce (checked just above).
    return eval(
        python, {"__builtins__": {}}, {"coalesce": lambda *a: next(x for x in a if x is not None)}
    )


def worker_environment_expressions(infra: Infra) -> dict[str, str]:
    """The MODFLEET_* entries of local.worker_environment, name -> HCL expression."""
    text = str(infra.locals.get("worker_environment", ""))[2:-1]  # inside ${...}
    literal = text[text.find("{") + 1 : text.rfind("}")]
    entries = {}
    for item in _split_top(literal):
        name, _, value = item.partition("=")
        entries[name.strip()] = value.strip()
    return entries


def environment_names(infra: Infra) -> set[str]:
    """Every MODFLEET_* name the user data can set: the stack's own, the template's, the tfvars'."""
    names = set(worker_environment_expressions(infra))
    names |= set(re.findall(r"\bMODFLEET_[A-Z0-9_]+", infra.template))
    for tfvars in infra.tfvars.values():
        names |= set((tfvars.get("worker") or {}).get("extra_environment") or {})
    return names


# ---- Layout --------------------------------------------------------------------------------------


def check_layout(infra: Infra) -> list[str]:
    """One module in terraform-aws-modules form; two or more roots, each with its own state."""
    problems = []
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
        if not (infra.path / MODULE / name).exists():
            problems.append(f"module: {name} missing")
    for name, spec in infra.variables.items():
        if not spec.get("description") or not spec.get("type"):
            problems.append(f"module: variable {name} needs a description and a type")
    for name, spec in infra.module["output"].items():
        if not spec.get("description"):
            problems.append(f"module: output {name} needs a description")
    if len(infra.roots) < 2:
        problems.append(f"need at least two region roots, found {sorted(infra.roots)}")
    state_keys = {}
    for region, root in infra.roots.items():
        calls = [
            m for m in root["module"].values() if m.get("source") == "../../modules/region-stack"
        ]
        if len(calls) != 1:
            problems.append(f"{region}: must call ../../modules/region-stack once")
        backends = [_one(t.get("backend")) for t in root["terraform"] if t.get("backend")]
        if not any("s3" in b for b in backends):
            problems.append(f'{region}: needs a partial `backend "s3" {{}}` block')
        backend_file = infra.path / "regions" / region / "backend.hcl"
        config = _parse(backend_file) if backend_file.exists() else {}
        if not {"bucket", "key", "region"} <= set(config) or config.get("encrypt") is not True:
            problems.append(f"{region}: backend.hcl needs bucket, key, region and encrypt = true")
        state_keys.setdefault((config.get("bucket"), config.get("key")), []).append(region)
        if infra.tfvars[region].get("region") != region:
            problems.append(f'{region}: terraform.tfvars must set region = "{region}"')
    for (bucket, key), regions in state_keys.items():
        if len(regions) > 1:
            problems.append(f"roots {regions} share one state (s3://{bucket}/{key})")
    return problems


# ---- Bucket --------------------------------------------------------------------------------------


def check_bucket(infra: Infra) -> list[str]:
    """Versioned, KMS-encrypted, private, TLS-only, with lifecycle rules and video notifications."""
    problems = []
    versioning = _one(
        infra.resource("aws_s3_bucket_versioning", "uploads").get("versioning_configuration")
    )
    if versioning.get("status") != "Enabled":
        problems.append("bucket: versioning must be Enabled")
    sse = _one(
        _one(
            infra.resource("aws_s3_bucket_server_side_encryption_configuration", "uploads").get(
                "rule"
            )
        ).get("apply_server_side_encryption_by_default")
    )
    if sse.get("sse_algorithm") != "aws:kms" or sse.get("kms_master_key_id") != KEY:
        problems.append("bucket: default encryption must be aws:kms with the stack's key")
    block = infra.resource("aws_s3_bucket_public_access_block", "uploads")
    for flag in (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ):
        if block.get(flag) is not True:
            problems.append(f"bucket: public access block {flag} must be true")
    if not _denies_insecure_transport(infra.data("aws_iam_policy_document", "uploads")):
        problems.append("bucket: policy must deny requests without TLS (aws:SecureTransport)")
    problems += _lifecycle_problems(infra)
    problems += _notification_problems(infra)
    return problems


def _denies_insecure_transport(doc: dict[str, Any]) -> bool:
    for statement in _statements(doc):
        for condition in _all(statement.get("condition")):
            if (
                statement.get("effect") == "Deny"
                and condition.get("variable") == "aws:SecureTransport"
                and condition.get("values") == ["false"]
            ):
                return True
    return False


def _lifecycle_problems(infra: Infra) -> list[str]:
    rules = _all(infra.resource("aws_s3_bucket_lifecycle_configuration", "uploads").get("rule"))
    enabled = [r for r in rules if r.get("status") == "Enabled"]
    problems = []
    if not any(r.get("abort_incomplete_multipart_upload") for r in enabled):
        problems.append("bucket: a lifecycle rule must abort incomplete multipart uploads")
    if not any(r.get("noncurrent_version_expiration") for r in enabled):
        problems.append("bucket: a lifecycle rule must expire non-current versions")
    return problems


def _notification_problems(infra: Infra) -> list[str]:
    queue = _dynamic(infra.resource("aws_s3_bucket_notification", "uploads"), "queue")
    content = _one(queue.get("content"))
    problems = []
    if (
        queue.get("for_each") != "${local.video_suffixes}"
        or content.get("filter_suffix") != "${queue.value}"
    ):
        problems.append("bucket: notifications must filter on each of local.video_suffixes")
    if content.get("queue_arn") != QUEUE or content.get("events") != ["s3:ObjectCreated:*"]:
        problems.append("bucket: notifications must send s3:ObjectCreated:* to the work queue")
    if "var.bucket.video_suffixes" not in str(infra.locals.get("video_suffixes")):
        problems.append("bucket: local.video_suffixes must come from var.bucket.video_suffixes")
    suffixes = object_defaults(infra.variables["bucket"]["type"][2:-1]).get("video_suffixes") or []
    for needed in (".mp4", ".mov", ".mkv", ".webm"):
        if needed not in suffixes:
            problems.append(f"bucket: default video_suffixes must include {needed}")
    return problems


# ---- Queues and topics ---------------------------------------------------------------------------


def check_queues(infra: Infra) -> list[str]:
    """Encrypted queue and DLQ, redrive by a variable, visibility derived, only the bucket sends."""
    problems = []
    queue, dlq = infra.resource("aws_sqs_queue", "this"), infra.resource("aws_sqs_queue", "dlq")
    for name, body in (("queue", queue), ("dead-letter queue", dlq)):
        if body.get("kms_master_key_id") != KEY:
            problems.append(f"{name}: must be encrypted with the stack's KMS key")
    redrive = str(queue.get("redrive_policy", ""))
    if "aws_sqs_queue.dlq.arn" not in redrive or "var.queue.max_receive_count" not in redrive:
        problems.append(
            "queue: redrive_policy must target the DLQ with var.queue.max_receive_count"
        )
    allow = str(
        infra.resource("aws_sqs_queue_redrive_allow_policy", "dlq").get("redrive_allow_policy", "")
    )
    if "byQueue" not in allow or "aws_sqs_queue.this.arn" not in allow:
        problems.append("dead-letter queue: redrive allow policy must name only the work queue")
    visibility = queue.get("visibility_timeout_seconds")
    if visibility != "${local.queue_visibility_timeout_s}":
        problems.append(
            "queue: visibility_timeout_seconds must be local.queue_visibility_timeout_s "
            f"(derived from the processing deadline), not {visibility!r}"
        )
    if "var.worker.processing_deadline_s" not in str(
        infra.locals.get("queue_visibility_timeout_s")
    ):
        problems.append(
            "queue: local.queue_visibility_timeout_s must derive from "
            "var.worker.processing_deadline_s"
        )
    problems += _queue_policy_problems(infra.data("aws_iam_policy_document", "queue"))
    return problems


def _queue_policy_problems(doc: dict[str, Any]) -> list[str]:
    problems = []
    allows = [s for s in _statements(doc) if s.get("effect", "Allow") == "Allow"]
    for statement in allows:
        principals = _all(statement.get("principals"))
        conditions = {c.get("variable"): c.get("values") for c in _all(statement.get("condition"))}
        if [(p.get("type"), p.get("identifiers")) for p in principals] != [
            ("Service", ["s3.amazonaws.com"])
        ]:
            problems.append("queue policy: only the S3 service may be allowed to send")
        if conditions.get("aws:SourceArn") != ["${aws_s3_bucket.uploads.arn}"]:
            problems.append(
                "queue policy: sends must be limited to the upload bucket (aws:SourceArn)"
            )
        if statement.get("actions") != ["sqs:SendMessage"]:
            problems.append("queue policy: the bucket may only sqs:SendMessage")
    if not allows:
        problems.append("queue policy: must allow the upload bucket to send")
    return problems


def check_topics(infra: Infra) -> list[str]:
    """Encrypted verdict and alarm topics with topic policies; CloudWatch may publish alarms."""
    problems = []
    for name in ("verdicts", "alarms"):
        if infra.resource("aws_sns_topic", name).get("kms_master_key_id") != KEY:
            problems.append(f"topic {name}: must be encrypted with the stack's KMS key")
        if (
            infra.resource("aws_sns_topic_policy", name).get("arn")
            != f"${{aws_sns_topic.{name}.arn}}"
        ):
            problems.append(f"topic {name}: needs a topic policy")
    alarm_principals = [
        p.get("identifiers")
        for s in _statements(infra.data("aws_iam_policy_document", "alarms"))
        for p in _all(s.get("principals"))
    ]
    if ["cloudwatch.amazonaws.com"] not in alarm_principals:
        problems.append("topic alarms: policy must let cloudwatch.amazonaws.com publish")
    for statement in _statements(infra.data("aws_iam_policy_document", "verdicts")):
        if statement.get("effect", "Allow") == "Allow" and any(
            "*" in (p.get("identifiers") or []) for p in _all(statement.get("principals"))
        ):
            problems.append("topic verdicts: policy must not allow every principal")
    if infra.resource("aws_kms_key", "this").get("enable_key_rotation") is not True:
        problems.append("kms: key rotation must be enabled")
    return problems


# ---- IAM -----------------------------------------------------------------------------------------


def check_worker_iam(infra: Infra) -> list[str]:
    """Only the worker's actions, each only on this stack's ARNs, no wildcards; a profile for it."""
    problems = []
    doc = infra.data("aws_iam_policy_document", "worker")
    granted: set[str] = set()
    for statement in _statements(doc):
        sid = statement.get("sid", "?")
        if statement.get("effect", "Allow") != "Allow":
            continue
        resources = statement.get("resources")
        resources = [resources] if isinstance(resources, str) else resources or []
        for action in statement.get("actions") or []:
            granted.add(action)
            if "*" in action:
                problems.append(f"iam {sid}: wildcard action {action}")
            allowed = ALLOWED_WORKER_ACTIONS.get(action)
            if allowed is None:
                problems.append(f"iam {sid}: {action} is not an action the worker uses")
                continue
            for resource in resources:
                for arn in _compact(resource):
                    if arn not in allowed:
                        problems.append(
                            f"iam {sid}: {action} on {arn} (allowed: {sorted(allowed)})"
                        )
    for action in sorted(set(ALLOWED_WORKER_ACTIONS) - granted):
        problems.append(f"iam: worker lacks {action}, which it calls")
    if "autoScalingGroupName/${local.asg_name}" not in str(infra.locals.get("asg_arn_pattern")):
        problems.append("iam: CompleteLifecycleAction must be limited to the stack's own group")
    profile = infra.resource("aws_iam_instance_profile", "worker")
    if profile.get("role") != "${aws_iam_role.worker.name}":
        problems.append("iam: the instance profile must carry the worker role")
    return problems


def _compact(resource: str) -> list[str]:
    """compact([a, b]) -> [a, b]; anything else as is."""
    match = re.fullmatch(r"\$\{compact\(\[(.*)\]\)\}", resource)
    if not match:
        return [resource]
    return ["${" + part.strip() + "}" for part in _split_top(match.group(1))]


# ---- Launch template and Auto Scaling group ------------------------------------------------------


def check_launch_template(infra: Infra) -> list[str]:
    """Neuron DLAMI from SSM, IMDSv2 with hop limit 1, encrypted root, cloud-init user data."""
    problems = []
    template = infra.resource("aws_launch_template", "this")
    metadata = _one(template.get("metadata_options"))
    if metadata.get("http_tokens") != "required":
        problems.append('launch template: IMDSv2 must be required (http_tokens = "required")')
    if metadata.get("http_put_response_hop_limit") != 1:
        problems.append(
            "launch template: metadata hop limit must be 1, got "
            f"{metadata.get('http_put_response_hop_limit')!r}"
        )
    if metadata.get("http_endpoint") != "enabled":
        problems.append("launch template: the metadata endpoint must stay enabled (drain script)")
    for mapping in _all(template.get("block_device_mappings")) or [{}]:
        if _one(mapping.get("ebs")).get("encrypted") is not True:
            problems.append("launch template: every EBS volume must be encrypted")
    for nic in _all(template.get("network_interfaces")):
        if nic.get("associate_public_ip_address") is not False:
            problems.append("launch template: workers must not get public IP addresses")
    if template.get("image_id") != "${data.aws_ami.neuron.id}":
        problems.append("launch template: image must be the Neuron DLAMI (data.aws_ami.neuron)")
    problems += _ami_problems(infra)
    if template.get("user_data") != (
        "${base64encode(templatefile(local.user_data_template, local.user_data_vars))}"
    ):
        problems.append("launch template: user data must render the cloud-init template")
    if not infra.template.startswith("#cloud-config"):
        problems.append("user data: template must be cloud-init (#cloud-config)")
    return problems


def _ami_problems(infra: Infra) -> list[str]:
    """The default AMI is the DLAMI of the release model/neuron_sdk.py pins, found by its
    description (the DLAMIs' SSM parameters name only the latest), and checked after the read."""
    problems = []
    ami = infra.data("aws_ami", "neuron")
    fleet = object_defaults(infra.variables["fleet"]["type"][2:-1])
    if fleet.get("neuron_sdk_release") != SDK_RELEASE:
        problems.append(
            f"ami: fleet.neuron_sdk_release defaults to {fleet.get('neuron_sdk_release')!r}, "
            f"model/neuron_sdk.py pins {SDK_RELEASE!r}"
        )
    if any("latest" in str(value) for value in fleet.values()):
        problems.append("ami: a default names `latest`: the DLAMI must be the pinned release's")
    if fleet.get("ami_id") is not None or fleet.get("ami_ssm_parameter") is not None:
        problems.append("ami: by default the DLAMI is found by release, not by an override")
    filters = str(infra.locals.get("ami_filters"))
    if '"description" = "*Neuron SDK ${var.fleet.neuron_sdk_release}*"' not in filters:
        problems.append("ami: the lookup must match the release in the DLAMI's description")
    if _dynamic(ami, "filter").get("for_each") != "${local.ami_filters}":
        problems.append("ami: the lookup's filters must be local.ami_filters")
    if ami.get("most_recent") is not True or '["amazon"]' not in str(ami.get("owners")):
        problems.append("ami: the default lookup takes the newest image owned by amazon")
    conditions = [
        str(c.get("condition"))
        for block in _all(ami.get("lifecycle"))
        for c in _all(block.get("postcondition"))
    ]
    if not any(
        "self.description" in c and "Neuron SDK ${var.fleet.neuron_sdk_release}" in c
        for c in conditions
    ):
        problems.append("ami: a postcondition must check that the image names the release")
    return problems


def check_autoscaling(infra: Infra) -> list[str]:
    """Inf2 mixed instances, rebalancing, drain hook, min 0, backlog-per-instance tracking."""
    problems = []
    group = infra.resource("aws_autoscaling_group", "this")
    mixed = _one(group.get("mixed_instances_policy"))
    launch = _one(mixed.get("launch_template"))
    spec = _one(launch.get("launch_template_specification"))
    if spec.get("version") != "${aws_launch_template.this.latest_version}":
        problems.append("asg: must follow the launch template's latest version (instance refresh)")
    if _dynamic(launch, "override").get("for_each") != "${var.fleet.instance_types}":
        problems.append(
            "asg: the mixed instances policy must override with var.fleet.instance_types"
        )
    defaults = object_defaults(infra.variables["fleet"]["type"][2:-1])
    if not all(t.startswith("inf2.") for t in defaults.get("instance_types") or ["none"]):
        problems.append("asg: default instance types must be Inf2")
    if group.get("capacity_rebalance") != "${var.fleet.capacity_rebalance}" or not defaults.get(
        "capacity_rebalance"
    ):
        problems.append("asg: capacity rebalancing must be on by default")
    if defaults.get("min_size") != 0 or not any(
        "var.fleet.min_size >= 0" in str(v.get("condition"))
        for v in _all(infra.variables["fleet"].get("validation"))
    ):
        problems.append("asg: min_size must default to 0 and be allowed to be 0")
    hook = _one(group.get("initial_lifecycle_hook"))
    if hook.get("lifecycle_transition") != "autoscaling:EC2_INSTANCE_TERMINATING":
        problems.append("asg: needs a termination lifecycle hook so the worker can drain")
    if not group.get("instance_refresh"):
        problems.append("asg: needs an instance_refresh block for model roll-outs")
    if "GroupInServiceInstances" not in (group.get("enabled_metrics") or []):
        problems.append("asg: GroupInServiceInstances must be enabled (backlog per instance)")
    problems += _backlog_policy_problems(infra)
    return problems


def _backlog_policy_problems(infra: Infra) -> list[str]:
    policy = infra.resource("aws_autoscaling_policy", "backlog")
    tracking = _one(policy.get("target_tracking_configuration"))
    metrics = _all(_one(tracking.get("customized_metric_specification")).get("metrics"))
    by_name = {}
    for metric in metrics:
        stat_metric = _one(_one(metric.get("metric_stat")).get("metric"))
        if stat_metric:
            by_name[stat_metric.get("metric_name")] = metric.get("id")
    visible = by_name.get("ApproximateNumberOfMessagesVisible")
    in_service = by_name.get("GroupInServiceInstances")
    returned = [m.get("expression") for m in metrics if m.get("return_data") is True]
    if (
        policy.get("policy_type") != "TargetTrackingScaling"
        or not visible
        or not in_service
        or (returned != [f"{visible} / {in_service}"])
    ):
        problems = ["asg: target tracking must follow visible messages / in-service instances"]
        return problems
    return []


# ---- Alarms and logs -----------------------------------------------------------------------------


def check_alarms(infra: Infra) -> list[str]:
    """DLQ-not-empty and oldest-message-age alarms to the alarm topic; an encrypted log group."""
    problems = []
    alarms = infra.module["resource"].get("aws_cloudwatch_metric_alarm", {})
    wanted = {
        ("ApproximateNumberOfMessagesVisible", "${aws_sqs_queue.dlq.name}"): "DLQ has messages",
        ("ApproximateAgeOfOldestMessage", "${aws_sqs_queue.this.name}"): "oldest message age",
    }
    for (metric, queue), label in wanted.items():
        found = [
            a
            for a in alarms.values()
            if a.get("metric_name") == metric
            and (a.get("dimensions") or {}).get("QueueName") == queue
        ]
        if not found:
            problems.append(f"alarms: no {label} alarm ({metric} on {queue})")
        elif "${aws_sns_topic.alarms.arn}" not in (found[0].get("alarm_actions") or []):
            problems.append(f"alarms: the {label} alarm must notify the alarm topic")
    dlq_alarm = alarms.get("dlq_not_empty", {})
    if (
        dlq_alarm.get("threshold") != 0
        or dlq_alarm.get("comparison_operator") != "GreaterThanThreshold"
    ):
        problems.append("alarms: the DLQ alarm must fire on the first message (> 0)")
    log_group = infra.resource("aws_cloudwatch_log_group", "worker")
    if log_group.get("kms_key_id") != KEY or not log_group.get("retention_in_days"):
        problems.append("logs: the worker log group needs the stack's KMS key and a retention")
    return problems


# ---- Cross-check with the worker -----------------------------------------------------------------


def check_worker_contract(
    infra: Infra, env_var_names: frozenset[str], settings_factory: Callable[..., Any]
) -> list[str]:
    """The user data speaks the worker's language, and its timings fit the worker's rules."""
    problems = []
    names = environment_names(infra)
    for name in sorted(names - env_var_names):
        problems.append(f"user data sets {name}, which worker.settings does not read")
    for name in sorted(REQUIRED_ENVIRONMENT - names):
        problems.append(f"user data must set {name}")
    problems += _template_problems(infra)
    for region in infra.roots:
        problems += [f"{region}: {p}" for p in _timing_problems(infra, region, settings_factory)]
    return problems


def _template_problems(infra: Infra) -> list[str]:
    problems = []
    unit = worker_unit_section(infra.template)
    for line in (
        "Restart=on-failure",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=${timeout_stop_s}",
        "ExecStart=${neuron_venv}/bin/modfleet worker",
    ):
        if line not in unit:
            problems.append(f"user data: the worker unit needs {line}")
    problems += _install_problems(infra)
    if not re.search(r"%\{ for (\w+), (\w+) in environment ~\}\n\s+Environment=\"\$\{\1\}=", unit):
        problems.append("user data: Environment= lines must come from the stack's environment map")
    user_data_vars = infra.locals.get("user_data_vars") or {}
    if user_data_vars.get("environment") != "${local.worker_environment}":
        problems.append("user data: environment must be local.worker_environment")
    if user_data_vars.get("timeout_stop_s") != "${local.worker_timeout_stop_s}":
        problems.append("user data: timeout_stop_s must be local.worker_timeout_stop_s")
    return problems


def _install_problems(infra: Infra) -> list[str]:
    """modfleet is installed from the wheelhouse into the DLAMI's Neuron venv, of the release
    setup.cfg builds, with no package index."""
    problems = []
    worker = object_defaults(infra.variables["worker"]["type"][2:-1])
    user_data_vars = infra.locals.get("user_data_vars") or {}
    if user_data_vars.get("neuron_venv") != "${var.worker.neuron_venv}":
        problems.append("user data: neuron_venv must be var.worker.neuron_venv")
    venv = str(worker.get("neuron_venv"))
    if not (venv.startswith(NEURON_VENV_PREFIX) and venv.endswith("_transformers")):
        problems.append(f"user data: the worker must run in the DLAMI's transformers-neuronx "
                        f"environment, not {venv}")
    version = _setup_cfg_version()
    if worker.get("version") != version:
        problems.append(f"user data: worker.version defaults to {worker.get('version')!r}, "
                        f"setup.cfg builds {version!r}")
    if "index-url" in infra.template:
        problems.append("user data: no package index at boot (install from the wheelhouse)")
    return problems


def _setup_cfg_version() -> str:
    match = re.search(r"^version\s*=\s*(\S+)$", SETUP_CFG.read_text(), re.M)
    return match.group(1) if match else "?"


def worker_unit_section(template: str) -> str:
    """The part of the cloud-init template that writes the worker's systemd unit."""
    start = template.find(f"path: {WORKER_UNIT}")
    end = template.find("\n  - path:", start + 1)
    return template[start:end] if start >= 0 else ""


def worker_values(infra: Infra, region: str) -> dict[str, Any]:
    """The settings the worker runs with in a region: the stack's where the unit sets them."""
    inputs = effective_inputs(infra, region)
    env = worker_environment_expressions(infra)
    values = {}
    for field in TIMING_SETTINGS + ("replicas", "tp_degree", "batch_size", "backend"):
        expression = env.get("MODFLEET_" + field.upper(), "")
        if f"var.worker.{field}" in expression:
            values[field] = inputs["worker"][field]
    return values


def stack_timings(infra: Infra, region: str) -> dict[str, Any]:
    """The derived numbers of a region's stack, evaluated from the module's locals."""
    inputs = effective_inputs(infra, region)
    return {
        name: evaluate(infra.locals[name], infra, inputs)
        for name in (
            "queue_visibility_timeout_s",
            "worker_timeout_stop_s",
            "drain_hook_timeout_s",
            "oldest_message_age_s",
        )
    }


def _timing_problems(infra: Infra, region: str, settings_factory: Callable[..., Any]) -> list[str]:
    try:
        timings = stack_timings(infra, region)
    except (KeyError, ValueError) as exc:
        return [f"cannot evaluate the stack's timings: {exc}"]
    try:
        settings = settings_factory(**worker_values(infra, region), compiled_dir=Path("/compiled"))
    except (SettingsError, TypeError, ValueError) as exc:  # e.g. heartbeat >= visibility
        return [f"the worker rejects the stack's settings: {exc}"]
    problems = []
    queue_visibility = timings["queue_visibility_timeout_s"]
    if settings.heartbeat_interval_s >= settings.visibility_timeout_s:
        problems.append(
            f"heartbeat ({settings.heartbeat_interval_s} s) must be shorter than the "
            f"visibility timeout the worker sets ({settings.visibility_timeout_s} s)"
        )
    if settings.heartbeat_interval_s >= queue_visibility:
        problems.append(
            f"heartbeat ({settings.heartbeat_interval_s} s) must be shorter than the "
            f"queue's visibility timeout ({queue_visibility} s)"
        )
    if queue_visibility < settings.processing_deadline_s:
        problems.append(
            f"queue visibility timeout ({queue_visibility} s) must cover the processing "
            f"deadline ({settings.processing_deadline_s} s)"
        )
    if queue_visibility > SQS_MAX_VISIBILITY_S:
        problems.append(f"queue visibility timeout ({queue_visibility} s) is above the SQS limit")
    if timings["worker_timeout_stop_s"] <= settings.shutdown_deadline_s:
        problems.append(
            f"systemd TimeoutStopSec ({timings['worker_timeout_stop_s']} s) must be above "
            f"the worker's shutdown deadline ({settings.shutdown_deadline_s} s)"
        )
    if timings["drain_hook_timeout_s"] <= timings["worker_timeout_stop_s"]:
        problems.append("the drain hook's timeout must outlast systemd's TimeoutStopSec")
    if timings["oldest_message_age_s"] <= settings.processing_deadline_s:
        problems.append("the oldest-message alarm must not fire within one processing deadline")
    problems += _neuron_core_problems(infra, region, settings)
    return problems


def _neuron_core_problems(infra: Infra, region: str, settings: Any) -> list[str]:
    fleet = effective_inputs(infra, region)["fleet"]
    needed = settings.replicas * settings.tp_degree
    return [
        f"{t} has {NEURON_CORES.get(t, 0)} NeuronCores, the worker needs {needed} "
        f"(replicas x tp_degree)"
        for t in fleet.get("instance_types") or []
        if NEURON_CORES.get(t, 0) < needed
    ]


# ---- Everything ----------------------------------------------------------------------------------


def structural_checks() -> Iterator[Callable[[Infra], list[str]]]:
    yield from (
        check_layout,
        check_bucket,
        check_queues,
        check_topics,
        check_worker_iam,
        check_launch_template,
        check_autoscaling,
        check_alarms,
    )


def all_problems(
    infra_dir: Path, env_var_names: frozenset[str], settings_factory: Callable[..., Any]
) -> list[str]:
    """Every problem of every structural check and of the worker cross-check."""
    infra = load(infra_dir)
    problems = [p for check in structural_checks() for p in check(infra)]
    return problems + check_worker_contract(infra, env_var_names, settings_factory)


# ---- The rendered user data ----------------------------------------------------------------------


def render_variables(infra: Infra, region: str) -> dict[str, Any]:
    """templatefile() variables of a region: evaluated where offline allows, placeholders else."""
    inputs = effective_inputs(infra, region)
    environment = dict(inputs["worker"].get("extra_environment") or {})
    for name, expression in worker_environment_expressions(infra).items():
        environment[name] = _literal(expression, inputs)
    variables: dict[str, Any] = {}
    for name, expression in infra.locals["user_data_vars"].items():
        if name == "environment":
            variables[name] = environment
            continue
        field = re.fullmatch(r"\$\{var\.(\w+)\.(\w+)\}", str(expression))
        if field:  # a plain input, e.g. var.worker.memory_max
            variables[name] = inputs[field.group(1)][field.group(2)]
            continue
        try:
            variables[name] = evaluate(expression, infra, inputs)
        except (KeyError, ValueError):
            variables[name] = f"<{name}>"
    return variables


def _literal(expression: str, inputs: dict[str, dict[str, Any]]) -> str:
    field = re.fullmatch(r"(?:tostring\()?var\.worker\.(\w+)\)?", expression)
    if field:
        return str(inputs["worker"][field.group(1)])
    if re.fullmatch(r'"[^"$]*"', expression):
        return expression[1:-1]
    return f"<{expression}>"


def written_files(document: dict[str, Any]) -> dict[str, str]:
    """path -> content of each file a cloud-init document writes (``write_files``)."""
    return {f.get("path"): f.get("content", "") for f in document.get("write_files") or []}


def check_rendered_user_data(
    rendered: str, env_var_names: frozenset[str], expected: dict[str, Any]
) -> list[str]:
    """The cloud-init document Terraform rendered: a worker unit the worker and systemd accept.

    expected: the worker's settings the unit must carry (field -> value) and
    ``shutdown_deadline_s``, which TimeoutStopSec must exceed.
    """
    try:
        document = yaml.safe_load(rendered)
    except yaml.YAMLError as exc:
        return [f"rendered user data is not YAML: {exc}"]
    files = written_files(document)
    if WORKER_UNIT not in files:
        return [f"rendered user data writes no {WORKER_UNIT}"]
    lines = [line.strip() for line in files[WORKER_UNIT].splitlines()]
    environment = {}
    for line in lines:
        match = re.fullmatch(r'Environment="([^=]+)=(.*)"', line)
        if match:
            environment[match.group(1)] = match.group(2)
        elif line.startswith("Environment"):
            return [f"worker unit: cannot read {line!r}"]
    problems = [
        f"worker unit sets {name}, which worker.settings does not read"
        for name in sorted(set(environment) - env_var_names)
    ]
    problems += [
        f"worker unit must set {name}" for name in sorted(REQUIRED_ENVIRONMENT - set(environment))
    ]
    for field, value in expected.items():
        name = "MODFLEET_" + field.upper()
        if field in TIMING_SETTINGS and environment.get(name) != str(value):
            problems.append(f"worker unit: {name} is {environment.get(name)!r}, expected {value!r}")
    stop = [line.partition("=")[2] for line in lines if line.startswith("TimeoutStopSec=")]
    if len(stop) != 1 or not stop[0].isdigit() or int(stop[0]) <= expected["shutdown_deadline_s"]:
        problems.append(
            f"worker unit: TimeoutStopSec {stop} must be one number above the "
            f"shutdown deadline ({expected['shutdown_deadline_s']} s)"
        )
    for line in ("Restart=on-failure", "KillSignal=SIGTERM"):
        if line not in lines:
            problems.append(f"worker unit: needs {line}")
    commands = " ".join(str(c) for c in document.get("runcmd") or [])
    if f"{INSTALL_SCRIPT} && systemctl enable --now modfleet-worker.service" not in commands:
        problems.append("cloud-init: runcmd must start modfleet-worker.service once installed")
    return problems + _rendered_install_problems(files.get(INSTALL_SCRIPT, ""), lines)


def _rendered_install_problems(script: str, unit_lines: list[str]) -> list[str]:
    """The install script: the wheelhouse only, the DLAMI's versions as constraints, into the
    venv the unit runs, and a clear stop where that venv is missing."""
    problems = []
    venv = re.search(r'^venv="([^"]+)"$', script, re.M)
    if not venv:
        return [f"cloud-init: {INSTALL_SCRIPT} must name the DLAMI's venv (venv=\"...\")"]
    if f"ExecStart={venv.group(1)}/bin/modfleet worker" not in unit_lines:
        problems.append(f"worker unit: ExecStart must run modfleet from {venv.group(1)}")
    for needed in ("--no-index", "--only-binary=:all:", "--constraint", "set -euo pipefail",
                   'if [ ! -x "$venv/bin/python" ]; then'):
        if needed not in script:
            problems.append(f"cloud-init: {INSTALL_SCRIPT} needs {needed}")
    if "index-url" in script:
        problems.append(f"cloud-init: {INSTALL_SCRIPT} must not use a package index")
    return problems
