"""The bound on how long the worker goes on while AWS refuses it.

A worker whose credentials expired, whose queue or topic was deleted, or whose role lost a
permission would otherwise log and retry for ever, looking alive to its supervisor.  ``FaultBound``
notes, per AWS operation, since when it has failed with no success in between; once that spans
``--fatal-after-s`` it hands an ``AwsUnavailable`` to the run loop, which releases what it holds and
ends the process with exit 3.  Receives count every failure (nothing can be done without them);
publishes only failures no retry cures, since an SNS outage is the processing deadline's business.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from worker.errors_aws import is_incurable, one_line
from worker.exceptions import AwsUnavailable

OnExpired = Callable[[AwsUnavailable], None]


class FaultBound:
    """Since when each AWS operation has been failing; ``on_expired`` once one spans ``bound_s``."""

    def __init__(self, bound_s: float, clock: Callable[[], float] = time.monotonic,
                 on_expired: OnExpired | None = None) -> None:
        self.bound_s, self.clock, self.on_expired = bound_s, clock, on_expired
        self.expired: AwsUnavailable | None = None
        self._since: dict[str, float] = {}

    def failed(self, operation: str, exc: BaseException) -> None:
        """One more failure of ``operation``; past the bound, the first one ends the run."""
        now = self.clock()
        failing_s = now - self._since.setdefault(operation, now)
        if failing_s >= self.bound_s and self.expired is None:
            self.expired = AwsUnavailable(
                f"{operation} has failed for {failing_s:.0f} s (--fatal-after-s "
                f"{self.bound_s:g}): {one_line(exc)}")
            if self.on_expired is not None:
                self.on_expired(self.expired)

    def succeeded(self, operation: str) -> None:
        self._since.pop(operation, None)

    def failing_since(self, operation: str) -> float | None:
        """When ``operation``'s current run of failures began (the clock's time), or None."""
        return self._since.get(operation)


class BoundedPublishes:
    """An SNS client whose ``publish`` failures that no retry cures count against a bound.

    Only ``publish`` is wrapped (the one call the publisher makes); the rest is the client's own.
    """

    OPERATION = "sns:Publish"

    def __init__(self, sns: Any, bound: FaultBound) -> None:
        self._sns, self._bound = sns, bound

    async def publish(self, **kwargs: Any) -> Any:
        try:
            response = await self._sns.publish(**kwargs)
        except Exception as exc:
            if is_incurable(exc):
                self._bound.failed(self.OPERATION, exc)
            raise
        self._bound.succeeded(self.OPERATION)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sns, name)
