"""The manifest that `modfleet compile` writes beside the Neuron artifacts, and its checks.

Compiled Neuron graphs have static shapes: batch size, frames, frame size (hence the number of
video tokens), sequence length, tensor-parallel degree and weight dtype are baked in.  A worker
refuses artifacts whose manifest disagrees with its configuration rather than failing deep inside the
runtime or, worse, running a different model than its verdicts claim.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from model.exceptions import ManifestMismatch
from model.config import ModelConfig

MANIFEST_NAME = "manifest.json"
FORMAT = "modfleet.neuron/v1"
# Fields a worker's model configuration must match exactly.
MUST_MATCH = ("batch_size", "frames_per_video", "frame_size", "tp_degree", "quantize", "mode")


@dataclass(frozen=True)
class Manifest:
    """What was compiled, for which static shapes, from which checkpoint, with which SDK."""

    arch: str
    model_name: str
    checkpoint_sha256: str
    synthetic: bool
    batch_size: int
    frames_per_video: int
    frame_size: int
    video_tokens: int
    n_positions: int
    tp_degree: int
    quantize: str
    amp: str
    mode: str
    max_new_tokens: int
    policy_version: str
    sdk_versions: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    format: str = FORMAT

    def write(self, directory: Path) -> Path:
        """Write ``manifest.json`` into ``directory``."""
        path = Path(directory) / MANIFEST_NAME
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path


def read_manifest(directory: Path) -> Manifest:
    """Parse ``directory/manifest.json``; a missing or foreign one is a ManifestMismatch."""
    path = Path(directory) / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ManifestMismatch(f"no readable {MANIFEST_NAME} in {directory}: run `modfleet "
                               f"compile --out {directory}` first ({exc})") from exc
    if raw.get("format") != FORMAT:
        raise ManifestMismatch(f"{path} has format {raw.get('format')!r}, expected {FORMAT!r}")
    try:
        return Manifest(**raw)
    except TypeError as exc:
        raise ManifestMismatch(f"{path} is malformed: {exc}") from exc


def check_manifest(manifest: Manifest, config: ModelConfig,
                   prompt_tokens: int | None = None) -> None:
    """Raise ManifestMismatch naming every setting the artifacts were not compiled for."""
    problems = [f"{name.replace('_', '-')}: compiled {getattr(manifest, name)!r}, "
                f"worker has {getattr(config, name)!r}"
                for name in MUST_MATCH if getattr(manifest, name) != getattr(config, name)]
    if config.mode == "generate" and config.max_new_tokens > manifest.max_new_tokens:
        problems.append(f"max-new-tokens: compiled for up to {manifest.max_new_tokens}, "
                        f"worker asks {config.max_new_tokens}")
    if prompt_tokens is not None and prompt_tokens + config.max_new_tokens > manifest.n_positions:
        problems.append(f"sequence: prompt {prompt_tokens} + {config.max_new_tokens} new tokens "
                        f"exceeds the compiled n_positions {manifest.n_positions}")
    if problems:
        raise ManifestMismatch("compiled artifacts do not match this worker (recompile with "
                               "`modfleet compile` and the same config): " + "; ".join(problems))


def checkpoint_sha256(checkpoint: Path) -> str:
    """SHA-256 over every file of a checkpoint directory (names and contents, sorted)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(checkpoint).rglob("*") if p.is_file()):
        digest.update(path.relative_to(checkpoint).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def sequence_positions(prompt_tokens: int, max_new_tokens: int, multiple: int = 128) -> int:
    """The decoder's n_positions: prompt plus budget, rounded up (the compiler's bucket size)."""
    needed = prompt_tokens + max_new_tokens
    return -(-needed // multiple) * multiple
