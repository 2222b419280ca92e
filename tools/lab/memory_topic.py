"""An SNS topic in memory with the one call the worker's publisher makes (``worker.publish``).

The publisher takes an aiobotocore SNS client and calls ``publish`` with SNS's keyword arguments;
this stands in for that client in the worker's unit tests, keeping each message published and
refusing the ones a test asks it to.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_ids = itertools.count(1)


@dataclass(frozen=True)
class Published:
    """One message the topic accepted."""

    topic_arn: str
    message: str
    attributes: Mapping[str, Any] = field(default_factory=dict)


class MemoryTopic:
    """SNS topics in memory: ``published`` holds what was published, in order.

    ``refuse(message)`` returns the error to raise for a message (None: accept it), for outages.
    """

    def __init__(self) -> None:
        self.published: list[Published] = []
        self.refuse: Callable[[str], BaseException | None] = lambda message: None

    async def publish(self, *, TopicArn: str, Message: str,  # noqa: N803 (SNS's names)
                      MessageAttributes: Mapping[str, Any] | None = None) -> dict[str, str]:
        await asyncio.sleep(0)  # a call over the network yields to the loop
        error = self.refuse(Message)
        if error is not None:
            raise error
        self.published.append(Published(TopicArn, Message, dict(MessageAttributes or {})))
        return {"MessageId": f"sns-{next(_ids)}"}
