"""The embedded stack provisions issue 21's resources as infra/ does, and names them in SSM."""

from __future__ import annotations

from tools.lab.embedded_aws import provision
from worker.aws import boto3_client


def test_the_stack_has_a_verdict_table_a_records_bucket_and_its_ssm_parameters(stack):
    dynamodb = boto3_client("dynamodb", stack.region, stack.endpoint_url)
    table = dynamodb.describe_table(TableName=stack.verdict_table)["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=stack.verdict_table)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    boto3_client("s3", stack.region, stack.endpoint_url).head_bucket(Bucket=stack.records_bucket)

    name = stack.name
    ssm = boto3_client("ssm", stack.region, stack.endpoint_url)
    found = {p["Name"].rsplit("/", 1)[1]: p["Value"] for p in ssm.get_parameters_by_path(
        Path=f"/modfleet/{name}/", Recursive=True)["Parameters"]}
    assert found == {"queue-url": stack.queue_url, "dlq-url": stack.dlq_url,
                     "topic-arn": stack.topic_arn, "bucket": stack.bucket,
                     "verdict-table": stack.verdict_table,
                     "records-bucket": stack.records_bucket, "evidence-prefix": "evidence/",
                     "hashlist-prefix": "hashlists/"}
    # Provisioning again reuses everything, the table included.
    again = provision(stack.endpoint_url, stack.region, name)
    assert (again.verdict_table, again.records_bucket) == (stack.verdict_table,
                                                          stack.records_bucket)
