"""Which files count as videos, by suffix: one list for uploads, benchmarks and tests.

The worker itself never trusts a suffix (a file that does not decode settles as ``not_a_video``);
this list only chooses what an operator command or a benchmark picks up from a folder.
"""

from __future__ import annotations

from pathlib import Path

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".mpg", ".mpeg",
                            ".ts", ".flv", ".wmv", ".3gp"})


def is_video_name(path: Path) -> bool:
    """True when the file's suffix (any case) is a video suffix."""
    return path.suffix.lower() in VIDEO_SUFFIXES


def video_files(folder: Path) -> list[Path]:
    """The regular files of ``folder`` with a video suffix, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_video_name(p))
