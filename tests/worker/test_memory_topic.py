"""The lab's MemoryTopic refuses what SNS refuses, as the embedded SNS (moto server, through a
real aiobotocore client) does: a message over 256 KiB."""

from __future__ import annotations

import asyncio

import pytest
from botocore.exceptions import ClientError

from tools.lab.memory_topic import MAX_MESSAGE_BYTES, MemoryTopic
from worker.aws import AsyncClients


async def publish_sizes(sns, topic_arn: str) -> list[str]:
    """Publish a message at the limit and one over it; the error code of each ('' if accepted)."""
    codes = []
    for size in (MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES + 1):
        try:
            await sns.publish(TopicArn=topic_arn, Message="x" * size)
            codes.append("")
        except ClientError as exc:
            codes.append(exc.response["Error"]["Code"])
    return codes


@pytest.mark.parametrize("topic", ["sns", "memory"])
def test_a_message_over_256_kib_is_refused(topic, request):
    if topic == "memory":
        codes = asyncio.run(publish_sizes(MemoryTopic(), "arn:aws:sns:us-east-1:1:t"))
    else:
        stack = request.getfixturevalue("stack")

        async def on_sns():
            async with AsyncClients(stack.region, stack.endpoint_url) as aws:
                return await publish_sizes(aws.sns, stack.topic_arn)
        codes = asyncio.run(on_sns())
    assert codes == ["", "InvalidParameter"]
