"""The embedded stack provisions issue 21's resources as infra/ does (its SSM parameters:
tests/tools/test_stack_resolution.py)."""

from __future__ import annotations

from tools.lab.embedded_aws import provision
from worker.aws import boto3_client


def test_the_stack_has_a_verdict_table_and_a_records_bucket(stack):
    dynamodb = boto3_client("dynamodb", stack.region, stack.endpoint_url)
    table = dynamodb.describe_table(TableName=stack.verdict_table)["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=stack.verdict_table)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    boto3_client("s3", stack.region, stack.endpoint_url).head_bucket(Bucket=stack.records_bucket)
    # Provisioning again reuses everything, the table included.
    again = provision(stack.endpoint_url, stack.region, stack.name)
    assert (again.verdict_table, again.records_bucket) == (stack.verdict_table,
                                                          stack.records_bucket)
