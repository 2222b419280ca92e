"""--stack and queue names, resolved once into the settings from the stack's SSM parameters on the
embedded AWS endpoint (the embedded stack writes them as the Terraform module does)."""

from __future__ import annotations

import pytest

from tools.lab.embedded_aws import provision
from worker import resources
from worker.exceptions import AwsSettingRejected, SettingsError
from worker.settings import Settings


def settings_for(info, **values) -> Settings:
    return Settings(region=info.region, endpoint_url=info.endpoint_url, **values)


def test_a_stack_fills_queue_dlq_topic_and_bucket_and_set_ones_win(stack):
    resolved = resources.resolve(settings_for(stack, stack=stack.name))
    assert (resolved.queue_url, resolved.dlq_url, resolved.topic_arn, resolved.bucket) == (
        stack.queue_url, stack.dlq_url, stack.topic_arn, stack.bucket)
    # ... and issue 21's verdict table and records bucket: the cache, lists and evidence.
    assert (resolved.verdict_table, resolved.records_bucket) == (stack.verdict_table,
                                                                 stack.records_bucket)
    given = "arn:aws:sns:us-east-1:123456789012:given"
    explicit = resources.resolve(settings_for(stack, stack=stack.name, topic_arn=given))
    assert explicit.topic_arn == given and explicit.queue_url == stack.queue_url


def test_the_embedded_stack_writes_the_documented_parameters(stack):
    from worker.aws import boto3_client

    ssm = boto3_client("ssm", stack.region, stack.endpoint_url)
    assert resources.stack_parameters(ssm, stack.name) == {
        "queue-url": stack.queue_url, "dlq-url": stack.dlq_url, "topic-arn": stack.topic_arn,
        "bucket": stack.bucket, "verdict-table": stack.verdict_table,
        "records-bucket": stack.records_bucket, "evidence-prefix": "evidence/",
        "hashlist-prefix": "hashlists/"}
    assert stack.name in resources.stack_names(ssm)


def test_several_stacks_and_no_stack_flag_asks_for_one(stack, embedded_aws):
    provision(embedded_aws.endpoint_url, name=f"{stack.name}-second")
    with pytest.raises(SettingsError) as refused:
        resources.resolve(settings_for(stack), needs=["queue_url"])
    message = str(refused.value)
    assert "--queue-url (or MODFLEET_QUEUE_URL)" in message
    assert "stacks in us-east-1" in message and stack.name in message and "--stack" in message


def test_an_unknown_stack_lists_the_known_ones(stack):
    with pytest.raises(SettingsError, match=r"--stack nope: no parameters under /modfleet/nope/ "
                                            r"in us-east-1 \(stacks there: .*"):
        resources.resolve(settings_for(stack, stack="nope"))


def test_queue_names_become_urls_in_the_region(stack):
    name = stack.queue_url.rsplit("/", 1)[1]
    resolved = resources.resolve(settings_for(stack, queue_url=name,
                                              dlq_url=stack.dlq_url.rsplit("/", 1)[1]))
    assert (resolved.queue_url, resolved.dlq_url) == (stack.queue_url, stack.dlq_url)
    with pytest.raises(AwsSettingRejected, match="--dlq-url typo: queue not found in us-east-1"):
        resources.resolve(settings_for(stack, queue_url=name, dlq_url="typo"))
