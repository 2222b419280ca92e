"""The Neuron runtime's NeuronCore ownership, as the fakes of torch-neuronx and transformers-neuronx
share it: a process that loads a model takes its visible NeuronCores until it exits.

Rule, from aws-neuron/aws-neuron-sdk at e52d322c5f49857e564c75e54082ee11638fdbb2:

- neuron-runtime/nrt-api-guide.rst:1036-1039: during ``nrt_init`` the NeuronCores are
  "exclusively associated with the calling process" and "become unavailable to any other process
  attempting to use them"; "once the owner process has called nrt_close or exited, the NeuronCores
  are released".  By default all the instance's cores; ``NEURON_RT_VISIBLE_CORES`` (:1042-1045)
  names a contiguous set (``3-6``, ``3,4,5,6``, ``3-5,6``).
- neuron-runtime/nrt-troubleshoot.rst:140-150: the other process fails "during runtime
  initialization" with ``NeuronCore(s) not available - Requested:nc1-nc1 Available:0``.

Here each NeuronCore is a lock file (``flock``) in ``MODFLEET_FAKE_NEURON_DIR`` (default: a
directory per user in the temporary directory); the kernel drops the lock when the process exits,
as the runtime releases the cores.  The instance has ``MODFLEET_FAKE_NEURON_CORES`` cores (default
2, an inf2.xlarge's).  The fakes call ``claim()`` where the real libraries initialise the runtime:
``torch_neuronx.trace``, loading inside ``torch_neuronx.neuron_cores_context`` and
``NeuronModelBase.to_neuron``.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

_held: list[int] = []  # open lock files: the cores this process owns until it exits


def visible(environ=None) -> list[int]:
    """The NeuronCores ``nrt_init`` would take for this process."""
    environ = os.environ if environ is None else environ
    spec = environ.get("NEURON_RT_VISIBLE_CORES", "")
    if not spec:
        return list(range(int(environ.get("MODFLEET_FAKE_NEURON_CORES", "2"))))
    cores: list[int] = []
    for part in spec.split(","):
        low, _, high = part.partition("-")
        cores.extend(range(int(low), int(high or low) + 1))
    if cores != list(range(cores[0], cores[0] + len(cores))):  # nrt-api-guide.rst:1045
        raise RuntimeError(f"NRT: NEURON_RT_VISIBLE_CORES={spec} is not a contiguous range")
    return cores


def claim() -> None:
    """``nrt_init``: take this process's visible NeuronCores, or fail as the runtime does."""
    if _held:
        return  # initialised once per process
    directory = Path(os.environ.get("MODFLEET_FAKE_NEURON_DIR")
                     or Path(tempfile.gettempdir()) / f"modfleet-fake-neuron-{os.getuid()}")
    directory.mkdir(parents=True, exist_ok=True)
    wanted = visible()
    taken: list[int] = []
    for core in wanted:
        fd = os.open(directory / f"nc{core}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            for held in taken:
                os.close(held)
            raise RuntimeError(
                f"nrt_init failed: ERROR NRT:nrt_allocate_neuron_cores NeuronCore(s) not "
                f"available - Requested:nc{wanted[0]}-nc{wanted[-1]} Available:0 "
                f"(pid {os.getpid()})") from None
        taken.append(fd)
    _held.extend(taken)


def owned() -> bool:
    """Whether this process has initialised the runtime (owns its cores)."""
    return bool(_held)


def release() -> None:
    """``nrt_close``: give this process's NeuronCores back (nrt-api-guide.rst:1038)."""
    while _held:
        os.close(_held.pop())
