"""Publish verdicts to SNS, retrying until the message's processing deadline.

A verdict is validated against the shipped schema first (a bug must not reach subscribers).  An
SNS outage is retried with capped exponential backoff while the heartbeat keeps the message
invisible; receiving pauses by itself because in-flight work stops draining.  Only when the
deadline passes does the message go back to the queue, unpublished and undeleted.
"""

from __future__ import annotations

import json
from typing import Any

from tenacity import (AsyncRetrying, RetryError, retry_if_exception, stop_after_delay,
                      wait_exponential_jitter)

from worker import verdict as verdicts
from worker.errors_aws import is_aws_failure
from worker.exceptions import RetryLater
from worker.logs import get_logger

log = get_logger(__name__)


class Publisher:
    def __init__(self, sns: Any, topic_arn: str, max_backoff_s: float) -> None:
        self.sns, self.topic_arn, self.max_backoff_s = sns, topic_arn, max_backoff_s

    async def publish(self, verdict: dict[str, Any], budget_s: float) -> str:
        """Publish one verdict; return the SNS message id or raise RetryLater after ``budget_s``."""
        verdicts.validate(verdict)
        body = json.dumps(verdict, separators=(",", ":"))
        attributes = verdicts.message_attributes(verdict)
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_aws_failure),
            wait=wait_exponential_jitter(initial=0.2, max=self.max_backoff_s),
            stop=stop_after_delay(max(budget_s, 0.0)),
            before_sleep=lambda state: log.warning(
                "publish failed; retrying", attempt=state.attempt_number,
                error=str(state.outcome.exception()), key=verdict["video"]["key"]),
        )
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self.sns.publish(TopicArn=self.topic_arn, Message=body,
                                                      MessageAttributes=attributes)
        except RetryError as exc:
            raise RetryLater(f"sns:Publish kept failing: {exc.last_attempt.exception()}") from exc
        except Exception as exc:
            raise RetryLater(f"sns:Publish failed: {exc}") from exc
        return response["MessageId"]
