"""Worker processes of a chaos run: started, interrupted at random moments, restarted.

Each slot runs one ``modfleet worker`` subprocess.  ``interrupt`` sends SIGKILL (or SIGTERM) to a
random running worker; a killed one is restarted at once, a terminated one once it has drained and
exited, as systemd would.  An exit the run did not ask for is a *death* (the promise broken: the
worker must survive everything a run throws at it); it is counted and the slot restarted.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

READY_EVENT = '"event": "worker polling"'


@dataclass
class _Slot:
    index: int
    process: subprocess.Popen | None = None
    generation: int = 0
    signalled: int | None = None  # the signal this run sent to the current process
    log_path: Path | None = None
    ready_at: float | None = None  # when it was first seen polling (model loaded, handlers set)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def polling_for(self) -> float:
        """Seconds it has been polling (0 when not running, signalled, or still starting: a kill
        during model loading tests nothing the worker promises, and a SIGTERM before its handler
        is installed is a plain kill)."""
        if not self.running() or self.signalled is not None:
            return 0.0
        if self.ready_at is None and self.log_path is not None:
            if READY_EVENT in self.log_path.read_text(errors="replace"):
                self.ready_at = time.monotonic()
        return 0.0 if self.ready_at is None else time.monotonic() - self.ready_at


@dataclass
class FleetCounts:
    """What happened to the workers."""

    started: int = 0
    sigkills: int = 0
    sigterms: int = 0
    deaths: int = 0                       # exits nobody asked for
    unclean_sigterm_exits: int = 0        # SIGTERM answered with a non-zero exit
    death_codes: list[int] = field(default_factory=list)


class Fleet:
    """``size`` worker processes built by ``command(slot, generation)``; logs under ``log_dir``."""

    def __init__(self, command: Callable[[int, int], list[str]], size: int, log_dir: Path,
                 rng: random.Random, min_uptime_s: float = 0.0, cwd: Path | None = None) -> None:
        self.command, self.log_dir, self.rng, self.cwd = command, log_dir, rng, cwd
        self.min_uptime_s = min_uptime_s
        self.slots = [_Slot(i) for i in range(size)]
        self.counts = FleetCounts()
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        for slot in self.slots:
            self._spawn(slot)

    def interrupt(self, sig: int) -> bool:
        """Send ``sig`` to a random worker polling for ``min_uptime_s`` at least; False if none."""
        polling = [s for s in self.slots if s.polling_for() >= max(self.min_uptime_s, 1e-9)]
        if not polling:
            return False
        slot = self.rng.choice(polling)
        slot.signalled = sig
        slot.process.send_signal(sig)
        if sig == signal.SIGKILL:
            self.counts.sigkills += 1
            slot.process.wait()
            self._spawn(slot)
        else:
            self.counts.sigterms += 1
        return True

    def poll(self) -> None:
        """Restart every worker that has exited; count the exits nobody asked for."""
        for slot in self.slots:
            if slot.process is None or slot.process.poll() is None:
                continue
            code = slot.process.returncode
            if slot.signalled == signal.SIGTERM:
                self.counts.unclean_sigterm_exits += code != 0
            elif slot.signalled is None:
                self.counts.deaths += 1
                self.counts.death_codes.append(code)
            self._spawn(slot)

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM every worker, wait for it to drain, SIGKILL what is left."""
        for slot in self.slots:
            if slot.process and slot.process.poll() is None:
                slot.signalled = signal.SIGTERM
                slot.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for slot in self.slots:
            if slot.process is None:
                continue
            try:
                slot.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                slot.process.kill()
                slot.process.wait()
            if slot.signalled is None and slot.process.returncode != 0:
                self.counts.deaths += 1

    def log_paths(self) -> list[Path]:
        return sorted(self.log_dir.glob("worker-*.log"))

    def _spawn(self, slot: _Slot) -> None:
        slot.generation += 1
        slot.signalled = None
        slot.ready_at = None
        slot.log_path = self.log_dir / f"worker-{slot.index}-{slot.generation:03d}.log"
        with open(slot.log_path, "w") as log:  # the child keeps its own descriptor
            slot.process = subprocess.Popen(
                self.command(slot.index, slot.generation), cwd=self.cwd, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.counts.started += 1
