"""Where a replica's checkpoint comes from: the user's directory, or a cached synthetic one.

The synthetic checkpoint is built on first use into
``<cache_dir>/synthetic/<preset>-<arch>-v<builder version>``.  Replica threads and worker processes
may race to build it: each builds into its own temporary directory beside the target and renames it
into place; a rename that loses the race (the target now exists) discards its copy.  Readers only
ever see a complete directory.
"""

from __future__ import annotations

import hashlib
import json
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


def resolve_checkpoint(config: ModelConfig, arch: str | None = None) -> tuple[Path, bool]:
    """(checkpoint directory, synthetic?) for this configuration, building a synthetic one if needed.

    The synthetic checkpoint is of ``arch``, else of ``config.synthetic_arch``.
    """
    arch = arch or config.synthetic_arch
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


def checkpoint_identity(checkpoint: Path, synthetic: bool) -> tuple[str, str]:
    """(name, version) of a checkpoint for verdicts, the same on every backend."""
    checkpoint = Path(checkpoint)
    if synthetic:
        marker = json.loads((checkpoint / "synthetic.json").read_text())
        return (f"synthetic-{marker['preset']}-{marker['arch'].replace('_', '-')}",
                f"builder-v{marker['builder_version']}-seed{marker['seed']}")
    config = json.loads((checkpoint / "config.json").read_text())
    return config.get("_name_or_path") or checkpoint.name, checkpoint_fingerprint(checkpoint)


def checkpoint_fingerprint(checkpoint: Path) -> str:
    """A short, stable version for a real checkpoint: its config plus weight file names and sizes.

    Hashing gigabytes of weights at every start would be slow; a retrained checkpoint changes sizes
    or config in practice, and `modfleet compile` hashes the full weights where it matters.
    """
    digest = hashlib.sha256((checkpoint / "config.json").read_bytes())
    for path in sorted(checkpoint.glob("*.safetensors")):
        digest.update(f"{path.name}:{path.stat().st_size}".encode())
    return "sha256:" + digest.hexdigest()[:16]
