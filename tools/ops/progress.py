"""Progress bars on a terminal only: scripts and CI logs get the summary, not redraw noise."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

Advance = Callable[[float], None]


@contextmanager
def progress_bar(description: str, total: float | None, *, stream: TextIO | None = None,
                 transfer: bool = False) -> Iterator[Advance]:
    """Yield ``advance(n)``; draw a rich bar on ``stream`` (stderr) only when it is a terminal."""
    stream = stream or sys.stderr
    if not stream.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    counter = (DownloadColumn(), TransferSpeedColumn()) if transfer else (MofNCompleteColumn(),)
    with Progress(TextColumn("{task.description}"), BarColumn(), *counter, TimeRemainingColumn(),
                  console=Console(file=stream), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
