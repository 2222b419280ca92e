"""What a chaos run uploads: small generated clips, the real clips, their mutants, poison bodies."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from tools.lab.chaos.mutants import mutants
from tools.ops.video_files import video_files

CLIP_SPECS = (  # small, so that a run of thousands spends its time on the fleet, not on decoding
    dict(name="gen-h264.mp4", width=96, height=64, seconds=2.0, fps=8, seed=1),
    dict(name="gen-rotated.mp4", width=64, height=96, seconds=1.0, fps=8, rotation=90, seed=2),
    dict(name="gen-gop.mp4", width=128, height=72, seconds=4.0, fps=6, keyframe_every_s=2.0,
         seed=3),
    dict(name="gen-vp9.webm", width=96, height=64, seconds=1.0, fps=8, codec="libvpx-vp9",
         container="webm", seed=4),
)
REAL_CLIP_MAX_BYTES = 8 * 1024 * 1024
POISON_BODIES = (
    "this is not json",
    '{"Records": "not a list"}',
    '{"bucket": 42}',
    '{"detail-type": "Object Created", "detail": {}}',
    "[1, 2, 3]",
)


@dataclass(frozen=True)
class Upload:
    """One object to upload: its key, its bytes, what it is (clip, reupload, or a mutant kind)."""

    key: str
    data: bytes
    kind: str
    source: str


def seed_clips(directory: Path, media_dir: Path | None) -> list[Path]:
    """The generated clips, plus the real ones under ``media_dir`` small enough to upload often."""
    from tools.lab.sample_videos import VideoSpec, write_video

    directory.mkdir(parents=True, exist_ok=True)
    paths = [write_video(VideoSpec(**spec), directory) for spec in CLIP_SPECS]
    if media_dir is not None and media_dir.is_dir():
        paths += [p for p in video_files(media_dir) if p.stat().st_size <= REAL_CLIP_MAX_BYTES]
    return paths


def plan_uploads(clips: list[Path], count: int, hostile: int, seed: int,
                 reupload_share: float = 0.05) -> list[Upload]:
    """``count`` clip uploads (a share of them new versions of an earlier key) and ``hostile``
    mutants, shuffled together with a seeded generator."""
    rng = random.Random(seed)
    corpus = [(path.name, path.read_bytes()) for path in clips]
    uploads: list[Upload] = []
    for i in range(count):
        name, data = corpus[rng.randrange(len(corpus))]
        # Every upload so far is a clip or a reupload (the mutants join after this loop).
        if uploads and rng.random() < reupload_share:
            uploads.append(Upload(rng.choice(uploads).key, data, "reupload", name))
        else:
            uploads.append(Upload(f"chaos/{i:05d}-{Path(name).stem}{Path(name).suffix}", data,
                                  "clip", name))
    for mutant in mutants(clips, hostile, seed):
        uploads.append(Upload(f"hostile/{mutant.name}", mutant.data, mutant.kind, mutant.source))
    rng.shuffle(uploads)
    return uploads
