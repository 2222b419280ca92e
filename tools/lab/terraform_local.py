"""A region root of infra/ applied to the embedded AWS stack (moto over HTTPS), then destroyed.

What an account would hold before the first apply is made first: a VPC with private subnets
tagged for the workers, and the Neuron DLAMI of the module's pinned SDK release (moto has no
Neuron image, so a stand-in owned by amazon, with the DLAMI's name and the release in its
description, for the module's own lookup to find).  The root itself is applied unchanged, with
its own terraform.tfvars; an override file only points the provider at the embedded endpoint (fake
credentials, the throw-away CA) and keeps the state in a local file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.lab.embedded_aws import StackInfo, TlsEmbeddedAws
from tools.lab.exceptions import TerraformUnavailable
from tools.lab.terraform import Terraform, Toolchain, copy_infra, toolchain
from tools.ops.queues import queue_arn
from worker.aws import LOCAL_CREDENTIALS, boto3_client

WORKER_TAG = ("modfleet:tier", "worker")  # the roots' default worker_subnet_tag
SERVICES = ("autoscaling", "cloudwatch", "dynamodb", "ec2", "iam", "kms", "logs", "s3", "sns",
            "sqs", "ssm", "sts")
# Settings of an Inf2 instance that a CPU machine replaces with its own: the model and where it
# lives.  Every AWS and timing setting of the stack's worker_environment is kept.
INSTANCE_ONLY_SETTINGS = ("MODFLEET_BACKEND", "MODFLEET_COMPILED_DIR", "MODFLEET_CACHE_DIR",
                          "MODFLEET_REPLICAS", "MODFLEET_TP_DEGREE", "MODFLEET_BATCH_SIZE")


@dataclass(frozen=True)
class Network:
    """A VPC and the subnets in it tagged for the workers."""

    vpc_id: str
    subnet_ids: tuple[str, ...]


class LocalApply:
    """One region root, copied under ``work_dir``, planned/applied/destroyed on ``aws``."""

    def __init__(self, tools: Toolchain, aws: TlsEmbeddedAws, work_dir: Path,
                 region_root: str = "us-east-1") -> None:
        self.aws = aws
        self.infra = copy_infra(work_dir / "infra")
        self.root = self.infra / "regions" / region_root
        if not (self.root / "main.tf").exists():
            raise TerraformUnavailable(f"no region root {region_root} under infra/regions/")
        self.region = _tfvars_region(self.root)
        self.terraform = Terraform(tools, self.root, env={
            **aws.env(), "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"]})
        self.networks: list[Network] = []

    def client(self, service: str) -> Any:
        """A boto3 client of the embedded endpoint that trusts its CA."""
        return boto3_client(service, self.region, self.aws.endpoint_url,
                            verify=str(self.aws.tls.ca_bundle))

    def prepare(self) -> None:
        """Write the override file, publish the DLAMI stand-in, ``terraform init``."""
        (self.root / "embedded_aws_override.tf").write_text(
            provider_override(self.aws.endpoint_url, self.aws.tls.ca_bundle))
        publish_dlami_image(self.region, *dlami_lookup(self.infra))
        self.terraform.init(backend=True)

    def add_worker_network(self, cidr: str = "10.40.0.0/16", subnets: int = 2) -> Network:
        """A VPC with ``subnets`` private subnets tagged for the workers."""
        ec2 = self.client("ec2")
        vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
        zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
        prefix = cidr.split(".")[:2]
        subnet_ids = []
        for i in range(subnets):
            subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=".".join(prefix + [str(i), "0/24"]),
                                       AvailabilityZone=zones[i % len(zones)])["Subnet"]
            subnet_ids.append(subnet["SubnetId"])
        ec2.create_tags(Resources=subnet_ids, Tags=[{"Key": WORKER_TAG[0], "Value": WORKER_TAG[1]}])
        network = Network(vpc_id, tuple(subnet_ids))
        self.networks.append(network)
        return network

    def remove_network(self, network: Network) -> None:
        ec2 = self.client("ec2")
        for subnet_id in network.subnet_ids:
            ec2.delete_subnet(SubnetId=subnet_id)
        ec2.delete_vpc(VpcId=network.vpc_id)
        self.networks.remove(network)

    def plan(self, check: bool = True) -> str:
        done = self.terraform.plan(check=check)
        return done.stdout + done.stderr

    def apply(self) -> dict[str, Any]:
        """``terraform apply``; the root's outputs."""
        self.terraform.apply()
        return self.terraform.outputs()

    def destroy(self) -> None:
        """Empty the versioned upload and records buckets, then ``terraform destroy``.

        The buckets keep every version of every object and the module leaves force_destroy off,
        so a used stack's buckets must be emptied first (infra/README.md, "Tear down a region").
        """
        outputs = self.terraform.outputs()
        for output in ("upload_bucket", "records_bucket"):
            for name in str(outputs.get(output, "")).split():
                empty_bucket(self.client("s3"), name)
        self.terraform.destroy()

    def leftovers(self) -> list[str]:
        """Everything of the stack still in the embedded AWS after a destroy (empty: clean)."""
        return stack_leftovers(self.client, {n.vpc_id for n in self.networks})


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker of a bucket; how many were deleted."""
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        versions = page.get("Versions", []) + page.get("DeleteMarkers", [])
        if versions:
            s3.delete_objects(Bucket=bucket, Delete={"Quiet": True, "Objects": [
                {"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions]})
            deleted += len(versions)
    return deleted


def provider_override(endpoint_url: str, ca_bundle: Path) -> str:
    """An override file: the AWS provider at the embedded endpoint, state in a local file."""
    endpoints = "\n".join(f'    {s:<11} = "{endpoint_url}"' for s in SERVICES)
    return f"""# Written by tools/lab/terraform_local.py: this root against the embedded AWS stack.
terraform {{
  backend "local" {{
    path = "terraform.tfstate"
  }}
}}

provider "aws" {{
  access_key                  = "{LOCAL_CREDENTIALS['aws_access_key_id']}"
  secret_key                  = "{LOCAL_CREDENTIALS['aws_secret_access_key']}"
  custom_ca_bundle            = "{ca_bundle}"
  s3_use_path_style           = true
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  max_retries                 = 2

  endpoints {{
{endpoints}
  }}
}}
"""


def dlami_lookup(infra: Path) -> tuple[str, str]:
    """(name filter, Neuron SDK release) of the module's default DLAMI lookup."""
    text = (infra / "modules" / "region-stack" / "variables.tf").read_text()
    found = [re.search(rf'{field}\s*=\s*optional\(string,\s*"([^"]+)"\)', text)
             for field in ("ami_name_filter", "neuron_sdk_release")]
    if not all(found):
        raise TerraformUnavailable("cannot find fleet.ami_name_filter and fleet.neuron_sdk_release "
                                   "defaults in the module")
    return found[0].group(1), found[1].group(1)


def publish_dlami_image(region: str, name_filter: str, release: str) -> str:
    """Register, in the in-process moto, an amazon-owned image the module's default lookup finds:
    named as the filter asks, its description naming the release.  Its ID."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami
    from moto.ec2.utils import random_ami_id

    # RegisterImage would make the caller the owner, and the lookup asks for amazon's images, so
    # the image goes straight into moto's store, as moto loads its own copies of AWS's images;
    # 898082745236 owns the Deep Learning AMIs among those copies.
    backend = ec2_backends[DEFAULT_ACCOUNT_ID][region]
    image = Ami(backend, ami_id=random_ami_id(), owner_id="898082745236", owner_alias="amazon",
                name=name_filter.rstrip("*").rstrip() + " 20250731 (embedded stand-in)",
                description=f"Neuron SDK {release} DLAMI stand-in for the embedded stack",
                public=True, architecture="x86_64", virtualization_type="hvm",
                root_device_type="ebs", region_name=f"{region}a")
    backend.amis[image.id] = image
    return image.id


def stack_info(outputs: dict[str, Any], endpoint_url: str, region: str,
               tap_queue_url: str = "") -> StackInfo:
    """The applied stack, as the embedded-stack helpers (drain_tap) address one."""
    return StackInfo(endpoint_url=endpoint_url, region=region, bucket=outputs["upload_bucket"],
                     queue_url=outputs["queue_url"], dlq_url=outputs["dlq_url"],
                     topic_arn=outputs["verdict_topic_arn"], tap_queue_url=tap_queue_url,
                     verdict_table=outputs.get("verdict_table"),
                     records_bucket=outputs.get("records_bucket"))


def worker_environment(outputs: dict[str, Any], endpoint_url: str,
                       ca_bundle: Path) -> dict[str, str]:
    """The worker's MODFLEET_* variables from the root's outputs (as the instance's unit sets
    them), pointed at the embedded endpoint; the Inf2-only model settings are left out."""
    env = {k: v for k, v in outputs["worker_environment"].items()
           if k not in INSTANCE_ONLY_SETTINGS}
    env.update(MODFLEET_ENDPOINT_URL=endpoint_url, AWS_CA_BUNDLE=str(ca_bundle))
    return env


def subscribe_tap(sqs: Any, sns: Any, topic_arn: str, name: str = "verdicts-tap"
                  ) -> tuple[str, str]:
    """A queue subscribed to the verdict topic (raw delivery), as a verdict consumer would:
    (queue URL, subscription ARN)."""
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    subscription = sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn(sqs, url),
                                 Attributes={"RawMessageDelivery": "true"})
    return url, subscription["SubscriptionArn"]


def stack_leftovers(client: Any, network_vpcs: set[str]) -> list[str]:
    """What is left of a destroyed stack; the network made before the apply does not count."""
    left: list[str] = []
    left += [f"s3 bucket {b['Name']}" for b in client("s3").list_buckets().get("Buckets", [])]
    left += [f"sqs queue {u}" for u in client("sqs").list_queues().get("QueueUrls", [])]
    sns = client("sns")
    left += [f"sns topic {t['TopicArn']}" for t in sns.list_topics().get("Topics", [])]
    left += [f"sns subscription {s['SubscriptionArn']}"
             for s in sns.list_subscriptions().get("Subscriptions", [])]
    kms = client("kms")
    # AWS managed keys (alias/aws/<service>) belong to the account, made on a service's first use
    # and never deleted: moto makes alias/aws/dynamodb's when the provider reads the table's SSE.
    aws_managed = {a.get("TargetKeyId") for a in kms.list_aliases().get("Aliases", [])
                   if a["AliasName"].startswith("alias/aws/")}
    for key in kms.list_keys().get("Keys", []):
        if key["KeyId"] in aws_managed:
            continue
        state = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"]
        if state != "PendingDeletion":  # a destroyed key waits out its deletion window, as in AWS
            left.append(f"kms key {key['KeyId']} ({state})")
    left += [f"kms alias {a['AliasName']}" for a in kms.list_aliases().get("Aliases", [])
             if not a["AliasName"].startswith("alias/aws/")]
    iam = client("iam")
    left += [f"iam role {r['RoleName']}" for r in iam.list_roles().get("Roles", [])]
    left += [f"iam instance profile {p['InstanceProfileName']}"
             for p in iam.list_instance_profiles().get("InstanceProfiles", [])]
    left += [f"log group {g['logGroupName']}"
             for g in client("logs").describe_log_groups().get("logGroups", [])]
    ec2 = client("ec2")
    left += [f"launch template {t['LaunchTemplateName']}"
             for t in ec2.describe_launch_templates().get("LaunchTemplates", [])]
    left += [f"security group {g['GroupId']} ({g['GroupName']})"
             for g in ec2.describe_security_groups().get("SecurityGroups", [])
             if g["GroupName"] != "default"]
    left += [f"vpc {v['VpcId']}" for v in ec2.describe_vpcs().get("Vpcs", [])
             if not v.get("IsDefault") and v["VpcId"] not in network_vpcs]
    autoscaling = client("autoscaling")
    left += [f"autoscaling group {g['AutoScalingGroupName']}"
             for g in autoscaling.describe_auto_scaling_groups().get("AutoScalingGroups", [])]
    left += [f"scaling policy {p['PolicyName']}"
             for p in autoscaling.describe_policies().get("ScalingPolicies", [])]
    cloudwatch = client("cloudwatch")
    left += [f"alarm {a['AlarmName']}"
             for a in cloudwatch.describe_alarms().get("MetricAlarms", [])]
    left += [f"dashboard {d['DashboardName']}"
             for d in cloudwatch.list_dashboards().get("DashboardEntries", [])]
    left += [f"dynamodb table {name}" for name in client("dynamodb").list_tables()["TableNames"]]
    parameters = client("ssm").get_paginator("get_parameters_by_path")
    left += [f"ssm parameter {p['Name']}"
             for page in parameters.paginate(Path="/modfleet", Recursive=True)
             for p in page.get("Parameters", [])]
    return left


def _tfvars_region(root: Path) -> str:
    match = re.search(r'^region\s*=\s*"([^"]+)"', (root / "terraform.tfvars").read_text(), re.M)
    if not match:
        raise TerraformUnavailable(f"{root}/terraform.tfvars sets no region")
    return match.group(1)


# ---- The `modfleet local-stack --terraform` command ---------------------------------------------


@dataclass(frozen=True)
class Applied:
    """A region root applied to the embedded stack: where it is and how a worker reaches it."""

    stack: StackInfo
    outputs: dict[str, Any]
    worker_env: dict[str, str]
    ca_bundle: str
    work_dir: str

    def as_dict(self) -> dict[str, Any]:
        return {"stack": self.stack.as_dict(), "outputs": self.outputs,
                "worker_env": self.worker_env, "ca_bundle": self.ca_bundle,
                "work_dir": self.work_dir}


class AppliedStack:
    """Context manager: embedded AWS over TLS, the worker network, ``terraform apply`` of a region
    root and a verdict tap; on exit the tap is removed, ``terraform destroy`` runs and
    ``leftovers`` lists what the destroy did not remove (the network is removed after)."""

    def __init__(self, work_dir: Path, region_root: str = "us-east-1",
                 say: Any = lambda message: None) -> None:
        self.work_dir = work_dir
        self.region_root = region_root
        self.say = say
        self.leftovers: list[str] | None = None
        self._aws: TlsEmbeddedAws | None = None
        self._local: LocalApply | None = None
        self._tap: tuple[str, str] | None = None

    def __enter__(self) -> Applied:
        try:
            return self._apply()
        except BaseException:
            self.__exit__()  # a failed or interrupted apply is destroyed as far as it got
            raise

    def _apply(self) -> Applied:
        tools = toolchain(self.work_dir)
        self._aws = TlsEmbeddedAws(self.work_dir / "tls").start()
        local = self._local = LocalApply(tools, self._aws, self.work_dir, self.region_root)
        local.add_worker_network()
        self.say(f"terraform init ({tools.terraform}, Terraform {tools.version}, providers from "
                 f"{tools.plugin_dir})")
        local.prepare()
        self.say(f"terraform apply of infra/regions/{self.region_root} to "
                 f"{self._aws.endpoint_url} (a few minutes) ...")
        outputs = local.apply()
        self._tap = subscribe_tap(local.client("sqs"), local.client("sns"),
                                  outputs["verdict_topic_arn"])
        return Applied(stack_info(outputs, self._aws.endpoint_url, local.region, self._tap[0]),
                       outputs, worker_environment(outputs, self._aws.endpoint_url,
                                                   self._aws.tls.ca_bundle),
                       str(self._aws.tls.ca_bundle), str(self.work_dir))

    def __exit__(self, *exc: object) -> None:
        local, aws = self._local, self._aws
        self._local = self._aws = None
        try:
            if local is not None and local.terraform.state_addresses():
                if self._tap is not None:
                    local.client("sns").unsubscribe(SubscriptionArn=self._tap[1])
                    local.client("sqs").delete_queue(QueueUrl=self._tap[0])
                self.say("terraform destroy ...")
                local.destroy()
                self.leftovers = local.leftovers()
                for network in list(local.networks):
                    local.remove_network(network)
        finally:
            if aws is not None:
                aws.stop()
