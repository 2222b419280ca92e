"""Publish verdicts to SNS, retrying until the message's processing deadline.

This is the verdict's JSON boundary: the typed ``Verdict`` becomes JSON here, and that JSON is
validated against the schema it names first (a bug must not reach subscribers).  An SNS outage is
retried with capped exponential backoff while the heartbeat keeps the message invisible; receiving
pauses by itself because in-flight work stops draining.  Only when the deadline passes does the
message go back to the queue, unpublished and undeleted.  Every failed attempt counts once in the
``PublishFailures`` metric.
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
from worker.metrics import Metrics

log = get_logger(__name__)


class Publisher:
    def __init__(self, sns: Any, topic_arn: str, max_backoff_s: float,
                 metrics: Metrics | None = None) -> None:
        self.sns, self.topic_arn, self.max_backoff_s = sns, topic_arn, max_backoff_s
        self.metrics = metrics if metrics is not None else Metrics(enabled=False, region="")

    async def publish(self, verdict: verdicts.Verdict, budget_s: float) -> str:
        """Publish one verdict; return the SNS message id or raise RetryLater after ``budget_s``."""
        body = message_body(verdict)
        attributes = verdicts.message_attributes(verdict)
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_aws_failure),
            wait=wait_exponential_jitter(initial=0.2, max=self.max_backoff_s),
            stop=stop_after_delay(max(budget_s, 0.0)),
            before_sleep=lambda state: log.warning(
                "publish failed; retrying", attempt=state.attempt_number,
                error=str(state.outcome.exception()), key=verdict.video.key),
        )
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._attempt(body, attributes)
        except RetryError as exc:
            raise RetryLater(f"sns:Publish kept failing: {exc.last_attempt.exception()}") from exc
        except Exception as exc:
            raise RetryLater(f"sns:Publish failed: {exc}") from exc
        return response["MessageId"]

    async def _attempt(self, body: str, attributes: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self.sns.publish(TopicArn=self.topic_arn, Message=body,
                                          MessageAttributes=attributes)
        except Exception:
            self.metrics.count("PublishFailures")
            raise


def message_body(verdict: verdicts.Verdict) -> str:
    """The SNS message: the verdict's JSON, validated against its schema, compact."""
    document = verdicts.to_json(verdict)
    verdicts.validate(document)
    return json.dumps(document, separators=(",", ":"))
