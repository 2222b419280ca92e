"""CPU of the worker's event-loop thread, split by the worker module each callback resumes in.

The loop runs every stage's network I/O in one thread, so thread CPU alone cannot split it.  While
installed, every callback the loop runs is timed (thread CPU) and charged to the innermost
module of ``STAGES`` in the coroutine chain it resumes: a task suspended in worker.fetch or
worker.ranged is fetching; in worker.publish or worker.settle, publishing and settling.  Callbacks
that are not task steps (socket readiness: reading responses and parsing HTTP for every request,
timers) are charged to ``event_loop``.  Bench-only: it wraps ``asyncio.events.Handle._run``.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from worker import app, fetch, heartbeat, pipeline, publish, ranged, runner, settle

# Module objects, not names: renaming one of these modules breaks this import (or an editor's
# rename follows it here) instead of silently moving its CPU into "other_tasks".  A module not
# named here is charged to the nearest named module that awaits it.
STAGES: dict[ModuleType, str] = {
    fetch: "fetch", ranged: "fetch", publish: "publish_settle", settle: "publish_settle",
    heartbeat: "heartbeat", runner: "receive_dispatch", app: "receive_dispatch",
    pipeline: "pipeline_waits"}
_STAGE_BY_NAME = {module.__name__: stage for module, stage in STAGES.items()}


class LoopProfile:
    """``with profile.installed(): asyncio.run(...)``; then ``profile.cpu_s`` by stage."""

    def __init__(self) -> None:
        self.cpu_s: dict[str, float] = defaultdict(float)

    @contextmanager
    def installed(self) -> Iterator[LoopProfile]:
        original = asyncio.events.Handle._run
        cpu_s = self.cpu_s

        def timed_run(handle: asyncio.events.Handle) -> None:
            stage = stage_of(handle)
            started = time.thread_time()
            try:
                original(handle)
            finally:
                cpu_s[stage] += time.thread_time() - started

        asyncio.events.Handle._run = timed_run
        try:
            yield self
        finally:
            asyncio.events.Handle._run = original


def stage_of(handle: asyncio.events.Handle) -> str:
    """The stage a callback belongs to: from the task it steps, else the event loop itself."""
    task = getattr(handle._callback, "__self__", None)
    if not isinstance(task, asyncio.Task):
        return "event_loop"
    stage = "other_tasks"
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None)
        module = frame.f_globals.get("__name__", "") if frame is not None else ""
        stage = _STAGE_BY_NAME.get(module, stage)
        coro = getattr(coro, "cr_await", None)
    return stage
