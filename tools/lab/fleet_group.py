"""A stand-in for the fleet's Auto Scaling group on the embedded stack, for `status` to report.

moto serves Auto Scaling and EC2: a launch template and a group of ``desired`` instances, which
moto starts at once (InService).  Nothing runs on them; the worker runs on the host.  With
``stack``, the group is also written as the stack's ``autoscaling-group`` SSM parameter, as the
Terraform module does, so that `status --stack` finds it.
"""

from __future__ import annotations

from tools.lab.embedded_aws.stack import write_stack_parameters
from worker.aws import boto3_client

STAND_IN_IMAGE = "ami-12c6146b"  # one of the images moto knows


def fleet_group(endpoint_url: str, region: str, name: str, desired: int = 1,
                max_size: int = 4, stack: str | None = None) -> str:
    """Create (or resize) the group ``name`` with ``desired`` instances; return its name."""
    if stack:
        write_stack_parameters(boto3_client("ssm", region, endpoint_url), stack,
                               {"autoscaling-group": name})
    autoscaling = boto3_client("autoscaling", region, endpoint_url)
    ec2 = boto3_client("ec2", region, endpoint_url)
    template = f"{name}-template"
    existing = ec2.describe_launch_templates(
        Filters=[{"Name": "launch-template-name", "Values": [template]}])["LaunchTemplates"]
    if not existing:
        ec2.create_launch_template(LaunchTemplateName=template, LaunchTemplateData={
            "ImageId": STAND_IN_IMAGE, "InstanceType": "inf2.xlarge"})
    if autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[name])["AutoScalingGroups"]:
        autoscaling.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=desired)
        return name
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": template},
        MinSize=0, MaxSize=max(max_size, desired), DesiredCapacity=desired,
        AvailabilityZones=[f"{region}a"])
    return name
