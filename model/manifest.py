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
FORMAT = "modfleet.neuron/v2"  # v2: LLaVA family, context bucket, graphs, exact SDK versions
# Fields a worker's model configuration must match exactly.
MUST_MATCH = ("batch_size", "frames_per_video", "frame_size", "tp_degree", "quantize", "mode")


@dataclass(frozen=True)
class Manifest:
    """What was compiled, for which static shapes, from which checkpoint, with which SDK."""

    arch: str
    model_name: str
    model_version: str
    checkpoint_sha256: str
    synthetic: bool
    batch_size: int
    frames_per_video: int
    frame_size: int
    video_tokens: int
    prompt_tokens: int
    n_positions: int
    context_length_estimate: int  # the prompt's bucket: one context-encoding call per batch
    tp_degree: int
    quantize: str
    amp: str
    mode: str
    max_new_tokens: int
    policy_version: str
    decoder_class: str
    sdk_release: str
    sdk_versions: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    graphs: list[str] = field(default_factory=list)  # what the decoder's save() wrote
    # The decoder's graphs by kind and bucket: {"context": [estimate], "token": [n_positions]}.
    buckets: dict[str, list[int]] = field(default_factory=dict)
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
    generated = config.max_new_tokens if config.mode == "generate" else 0
    if prompt_tokens is not None and prompt_tokens + generated > manifest.n_positions:
        problems.append(f"sequence: prompt {prompt_tokens} + {generated} new tokens "
                        f"exceeds the compiled n_positions {manifest.n_positions}")
    if problems:
        raise ManifestMismatch("compiled artifacts do not match this worker (recompile with "
                               "`modfleet compile` and the same config): " + "; ".join(problems))


def check_versions(manifest: Manifest, installed: dict[str, str]) -> None:
    """Raise ManifestMismatch naming each package whose installed version is not the compiled one:
    compiled graphs are only loadable by the compiler and runtime that made them."""
    from model.neuron_sdk import version_drift

    drift = version_drift(manifest.sdk_versions, installed)
    if drift:
        raise ManifestMismatch(
            f"installed Neuron SDK differs from the one these artifacts were compiled with "
            f"(SDK {manifest.sdk_release}): " + "; ".join(drift) + ". Install the versions the "
            "manifest names (setup.cfg's neuron extra) or recompile with `modfleet compile`")


def check_files(manifest: Manifest, directory: Path) -> None:
    """Raise ManifestMismatch naming every artifact the manifest lists that is not on disk."""
    directory = Path(directory)
    wanted = [directory / manifest.files["vision"],
              directory / manifest.files["decoder_checkpoint"] / "config.json",
              *(directory / manifest.files["decoder"] / g for g in manifest.graphs)]
    absent = [str(p.relative_to(directory)) for p in wanted if not p.is_file()]
    if absent:
        raise ManifestMismatch(f"compiled artifacts missing in {directory}: {', '.join(absent)}; "
                               f"copy them completely or rerun `modfleet compile`")


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


def prompt_bucket(prompt_tokens: int, n_positions: int, multiple: int = 128) -> int:
    """The context-encoding bucket (``context_length_estimate``) that holds the whole prompt.

    Without it transformers-neuronx makes buckets of half of each ``n_positions`` bucket, and a
    prompt longer than the largest is prefilled one token per device call (base.py ``context``).
    """
    return min(-(-prompt_tokens // multiple) * multiple, n_positions)
