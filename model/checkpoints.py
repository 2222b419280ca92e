"""Where a replica's checkpoint comes from: the user's directory, or a cached synthetic one.

The synthetic checkpoint is built on first use into
``<cache_dir>/synthetic/<preset>-<arch>-v<builder version>``.  Replica threads and worker processes
may race to build it: each builds into its own temporary directory beside the target and renames it
into place; a rename that loses the race (the target now exists) discards its copy.  Readers only
ever see a complete directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from model.exceptions import CheckpointUnusable
from model.synthetic import BUILDER_VERSION, build_checkpoint, is_synthetic
import structlog
from model.config import ModelConfig

log = structlog.get_logger(__name__)
DEFAULT_ARCH = "qwen2_vl"


def resolve_checkpoint(config: ModelConfig, arch: str = DEFAULT_ARCH) -> tuple[Path, bool]:
    """(checkpoint directory, synthetic?) for this configuration, building a synthetic one if needed."""
    if config.model_dir is not None:
        path = Path(config.model_dir).expanduser()
        if not (path / "config.json").is_file():
            raise CheckpointUnusable(f"--model-dir {path} has no config.json: not a checkpoint")
        return path, is_synthetic(path)
    target = synthetic_path(config.cache_dir, config.synthetic_preset, arch)
    if not (target / "config.json").is_file():
        build_atomically(target, config.synthetic_preset, arch)
    return target, True


def synthetic_path(cache_dir: Path, preset: str, arch: str = DEFAULT_ARCH) -> Path:
    """Where the cached synthetic checkpoint of ``preset`` and ``arch`` lives."""
    return Path(cache_dir).expanduser() / "synthetic" / f"{preset}-{arch}-v{BUILDER_VERSION}"


def build_atomically(target: Path, preset: str, arch: str) -> Path:
    """Build into a private temporary directory, then rename it to ``target`` (first one wins)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        log.info("building synthetic checkpoint", preset=preset, arch=arch, path=str(target))
        build_checkpoint(scratch, preset, arch)
        try:
            os.rename(scratch, target)
        except OSError:
            # Another builder won the race; its directory is complete, ours is redundant.
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target
