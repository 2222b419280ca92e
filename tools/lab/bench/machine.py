"""What machine a benchmark ran on, so numbers are never read without it."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def describe_machine() -> dict[str, Any]:
    """CPU model, cores, memory, library versions, the GPU if any, and the load at the start."""
    import av
    import torch

    info = {"cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gib": _memory_gib(),
            "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads_default": torch.get_num_threads(), "pyav": av.__version__,
            "ffmpeg": _ffmpeg_version(), "load_average_at_start": [round(x, 2) for x in
                                                                   os.getloadavg()]}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return round(pages * size / 1024**3, 1)


def _ffmpeg_version() -> str:
    import av

    libs = getattr(av, "library_versions", {})
    version = libs.get("libavcodec")
    return "libavcodec " + ".".join(map(str, version)) if version else "unknown"
