"""PDQ fingerprints of the frames the sampler already decoded (no decode of their own).

PDQ (Meta's perceptual hash, the image format of ThreatExchange) turns a frame into 256 bits whose
Hamming distance is small for the same picture re-encoded, rescaled or lightly edited, with a
quality score (0-100) that is low for flat frames: a black or single-colour frame hashes to bits
that match every other flat frame, so frames under ``MIN_QUALITY`` (ThreatExchange's usual 50) are
stored but never matched.  Hashing the letterboxed square frames keeps one code path: the black
bars are the same for every encoding of one aspect ratio.  ``pdqhash`` hashes a 224 px frame in
well under a millisecond, so it runs in the decode thread right after sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALGORITHM = "pdq"
BITS = 256
MIN_QUALITY = 50
DEFAULT_THRESHOLD = 31  # PDQ's usual match distance (of 256 bits)


@dataclass(frozen=True)
class FrameFingerprint:
    """One sampled frame's PDQ hash (64 hex digits), its quality and when it was shown."""

    timestamp_ms: int
    pdq: str
    quality: int

    @property
    def matchable(self) -> bool:
        return self.quality >= MIN_QUALITY


def fingerprint_frames(frames: np.ndarray, timestamps_ms: Sequence[int]
                       ) -> tuple[FrameFingerprint, ...]:
    """PDQ of each (S, S, 3) uint8 RGB frame, in order."""
    import pdqhash  # a compiled extension: imported where fingerprints are wanted

    prints = []
    for frame, timestamp in zip(frames, timestamps_ms):
        bits, quality = pdqhash.compute(np.ascontiguousarray(frame))
        prints.append(FrameFingerprint(int(timestamp), bits_to_hex(bits), int(quality)))
    return tuple(prints)


def bits_to_hex(bits: np.ndarray) -> str:
    """pdqhash's 256 0/1 values -> 64 hex digits, most significant bit first."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def hex_to_bytes(pdq: str) -> bytes:
    """64 hex digits -> 32 bytes; ValueError for anything else."""
    raw = bytes.fromhex(pdq.strip())
    if len(raw) != BITS // 8:
        raise ValueError(f"a PDQ hash is {BITS // 4} hex digits, got {len(pdq.strip())}")
    return raw


def as_matrix(hashes: Sequence[str]) -> np.ndarray:
    """(len, 32) uint8 matrix of hex hashes, for ``distances``."""
    if not hashes:
        return np.zeros((0, BITS // 8), np.uint8)
    return np.frombuffer(b"".join(hex_to_bytes(h) for h in hashes), np.uint8).reshape(-1, 32)


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def distances(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """(Q, R) Hamming distances between two (n, 32) uint8 hash matrices."""
    xor = np.bitwise_xor(queries[:, None, :], references[None, :, :])
    return _POPCOUNT[xor].sum(axis=2, dtype=np.int32)
