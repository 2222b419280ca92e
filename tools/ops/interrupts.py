"""SIGINT and SIGTERM as a request to stop, for commands that must finish cleanly when asked to.

A long scan of a dead-letter queue holds messages invisible; killed by the default handlers it
would leave them hidden for the whole hold and print nothing.  ``StopOnSignal`` turns both signals
into an event that the scan checks between steps (and waits on instead of sleeping), so the command
stops receiving, releases what it holds, prints its account and exits 130 or 143.  A second Ctrl-C
raises KeyboardInterrupt as usual, for an operator who wants out at once.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignal:
    """A context manager: inside it SIGINT and SIGTERM set ``is_set()`` instead of ending the
    process; ``signal_name`` and ``exit_code`` (128 + the signal's number) say which came."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():  # only it may set handlers
            self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, or less when a signal asks to stop; True if asked."""
        return self._event.wait(timeout)

    def set(self, signum: int = signal.SIGTERM) -> None:
        """Ask to stop as if ``signum`` had come (for callers that stop a scan themselves)."""
        if self.signum is None:
            self.signum = signum
        self._event.set()

    @property
    def signal_name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int | None:
        """130 after SIGINT, 143 after SIGTERM (the shell's 128 + signal number), else None."""
        return None if self.signum is None else 128 + self.signum

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: out now (what is held lapses by itself)
        self.set(signum)
