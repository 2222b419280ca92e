"""An asyncio event loop on a virtual clock: when nothing is ready, time jumps to the next timer.

Sleeps, long polls, pauses and deadlines of the run loop then take no real time, so a test can use
the worker's real settings (a 20 s poll, a 60 s shutdown deadline) and still run in milliseconds.
Real I/O and wake-ups from other threads are still seen, but while a timer is pending time does
not wait for them: code under test that waits on threads belongs on a real loop.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class VirtualClock:
    """Seconds of virtual time; one clock can outlive several loops (and the in-memory queue
    reads it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self.clock = clock

    def select(self, timeout: float | None = None) -> list:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # no timer at all: only I/O can wake the loop
            return super().select(None)
        self.clock.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose ``time()`` is ``clock`` and whose idle waits advance it."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(_JumpingSelector(clock))
        self.clock = clock

    def time(self) -> float:
        return self.clock.now


def run(coroutine: Coroutine[Any, Any, T], clock: VirtualClock) -> T:
    """``asyncio.run`` on a ``VirtualTimeLoop`` reading ``clock``."""
    loop = VirtualTimeLoop(clock)
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.run_until_complete(_cancel_leftovers())
        loop.close()


async def _cancel_leftovers() -> None:
    leftovers = asyncio.all_tasks() - {asyncio.current_task()}
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
