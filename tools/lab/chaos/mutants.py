"""Hostile media: seeded mutants of real clips, made to break demuxers and decoders.

Every mutant is a deterministic function of (seed, index, sources): the same command makes the same
files, so a mutant that breaks the worker can be made again and kept as a test.  The kinds:

- ``flip``: a few bytes flipped anywhere; ``flip_head``: many flipped in the first 4 KiB
- ``truncate``: cut at a random point
- ``splice``: the head of one clip joined to the tail of another
- ``huge_box``: an MP4 box header claiming a size far beyond the file (32- or 64-bit)
- ``huge_frame``: the track header claiming a 65535 x 65535 picture
- ``frame_count``: sample tables (stsz, stts, stco) claiming billions of entries
- ``duration``: movie and media headers claiming absurd (or zero) durations and time scales
- ``bare_stream``: the elementary H.264/HEVC stream without a container, named ``.mp4``
- ``damaged_moov``: a run of random bytes written over the middle of the ``moov`` box
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

KINDS = ("flip", "flip_head", "truncate", "splice", "huge_box", "huge_frame", "frame_count",
         "duration", "bare_stream", "damaged_moov")
CONTAINER_BOXES = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"udta",
                   b"mvex", b"moof", b"traf"}


@dataclass(frozen=True)
class Mutant:
    """One hostile file: its name, bytes, and how it was made."""

    name: str
    kind: str
    source: str
    data: bytes


@dataclass(frozen=True)
class Box:
    kind: bytes
    offset: int  # of the header
    size: int
    header: int  # 8, or 16 with a 64-bit size


def mutants(sources: list[Path], count: int, seed: int) -> Iterator[Mutant]:
    """``count`` mutants of ``sources``, kinds in turn, each from its own seeded generator."""
    corpus = [(path.name, path.read_bytes()) for path in sorted(sources)]
    if not corpus:
        raise ValueError("no source clips to mutate")
    for index in range(count):
        rng = random.Random(f"{seed}/{index}")
        kind = KINDS[index % len(KINDS)]
        name, data = corpus[rng.randrange(len(corpus))]
        other = corpus[rng.randrange(len(corpus))][1]
        mutated = MUTATORS[kind](data, rng, other)
        yield Mutant(name=f"{index:05d}-{kind}-{Path(name).stem}.mp4", kind=kind, source=name,
                     data=mutated)


def write_mutants(sources: list[Path], count: int, seed: int, directory: Path) -> list[Path]:
    """Write the mutants into ``directory``; their paths, in order."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for mutant in mutants(sources, count, seed):
        path = directory / mutant.name
        path.write_bytes(mutant.data)
        paths.append(path)
    return paths


def kind_of(name: str) -> str:
    """The kind a mutant's file name records (``00042-splice-clip.mp4`` -> ``splice``)."""
    parts = Path(name).name.split("-", 2)
    return parts[1] if len(parts) == 3 and parts[1] in KINDS else "unknown"


# ---- the mutators: (data, rng, another clip) -> bytes --------------------------------------------

def _flip(data: bytes, rng: random.Random, _other: bytes, span: int | None = None,
          flips: int | None = None) -> bytes:
    out = bytearray(data)
    limit = min(len(out), span or len(out))
    for _ in range(flips or rng.randint(1, 32)):
        out[rng.randrange(limit)] ^= 1 << rng.randrange(8)
    return bytes(out)


def _flip_head(data: bytes, rng: random.Random, other: bytes) -> bytes:
    return _flip(data, rng, other, span=4096, flips=rng.randint(8, 64))


def _truncate(data: bytes, rng: random.Random, _other: bytes) -> bytes:
    return data[:rng.randint(1, max(1, len(data) - 1))]


def _splice(data: bytes, rng: random.Random, other: bytes) -> bytes:
    return data[:rng.randint(1, len(data))] + other[rng.randint(0, len(other) - 1):]


def _huge_box(data: bytes, rng: random.Random, other: bytes) -> bytes:
    found = boxes(data)
    if not found:
        return _flip_head(data, rng, other)
    box = rng.choice(found)
    out = bytearray(data)
    if box.header == 16 or rng.random() < 0.5:
        # size field 1: the real size is the 64-bit field after the type
        if box.header == 16:
            struct.pack_into(">Q", out, box.offset + 8, rng.choice([2**63 - 1, 2**40, 2**62]))
            return bytes(out)
        return bytes(out[:box.offset]) + struct.pack(">I4sQ", 1, box.kind, 2**62 + 7) + \
            bytes(out[box.offset + 8:])
    struct.pack_into(">I", out, box.offset, rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 2, 7]))
    return bytes(out)


def _huge_frame(data: bytes, rng: random.Random, other: bytes) -> bytes:
    out = bytearray(data)
    touched = False
    for box in boxes(data):
        if box.kind == b"tkhd" and box.size >= box.header + 84:
            # width and height are the last two 16.16 fixed-point fields of the box
            end = box.offset + box.size
            struct.pack_into(">II", out, end - 8, rng.choice([0xFFFF0000, 0x7FFF0000, 0]),
                             rng.choice([0xFFFF0000, 0x7FFF0000, 0]))
            touched = True
        if box.kind == b"avc1" or box.kind == b"hvc1" or box.kind == b"hev1":
            struct.pack_into(">HH", out, box.offset + 32, 0xFFFF, rng.choice([0xFFFF, 0, 1]))
            touched = True
    return bytes(out) if touched else _flip_head(data, rng, other)


def _frame_count(data: bytes, rng: random.Random, other: bytes) -> bytes:
    out = bytearray(data)
    touched = False
    for box in boxes(data):
        body = box.offset + box.header
        if box.kind == b"stsz" and box.size >= box.header + 12:
            struct.pack_into(">I", out, body + 8, rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 10**8]))
            touched = True
        elif box.kind in (b"stts", b"stco", b"stss", b"stsc") and box.size >= box.header + 8:
            struct.pack_into(">I", out, body + 4, rng.choice([0xFFFFFFFF, 0x40000000, 10**7]))
            touched = True
    return bytes(out) if touched else _flip_head(data, rng, other)


def _duration(data: bytes, rng: random.Random, other: bytes) -> bytes:
    out = bytearray(data)
    touched = False
    for box in boxes(data):
        if box.kind in (b"mvhd", b"mdhd", b"tkhd") and box.size >= box.header + 32:
            body = box.offset + box.header
            version = out[body]
            # v0: creation, modification (4 each), [timescale] duration; v1: 8-byte times
            times = 8 if version == 0 else 16
            scale_at = body + 4 + times
            if box.kind == b"tkhd":  # track id and a reserved word, then duration
                struct.pack_into(">I", out, scale_at + 8, 0xFFFFFFFF)
            else:
                struct.pack_into(">I", out, scale_at, rng.choice([1, 0, 0xFFFFFFFF]))
                if version == 0:
                    struct.pack_into(">I", out, scale_at + 4, rng.choice([0xFFFFFFFF, 0, 1]))
                else:
                    struct.pack_into(">Q", out, scale_at + 4, 2**63 - 1)
            touched = True
    return bytes(out) if touched else _flip_head(data, rng, other)


def _bare_stream(data: bytes, rng: random.Random, other: bytes) -> bytes:
    stream = elementary_stream(data)
    if stream is None:
        return _truncate(data, rng, other)
    return stream if rng.random() < 0.5 else _flip(stream, rng, other)


def _damaged_moov(data: bytes, rng: random.Random, other: bytes) -> bytes:
    moov = next((b for b in boxes(data) if b.kind == b"moov"), None)
    if moov is None or moov.size < 64:
        return _flip_head(data, rng, other)
    out = bytearray(data)
    start = moov.offset + rng.randint(moov.header, moov.size // 2)
    length = rng.randint(4, max(4, min(256, moov.offset + moov.size - start)))
    out[start:start + length] = rng.randbytes(length)
    return bytes(out)


MUTATORS = {"flip": _flip, "flip_head": _flip_head, "truncate": _truncate, "splice": _splice,
            "huge_box": _huge_box, "huge_frame": _huge_frame, "frame_count": _frame_count,
            "duration": _duration, "bare_stream": _bare_stream, "damaged_moov": _damaged_moov}


# ---- reading MP4 ---------------------------------------------------------------------------------

def boxes(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> list[Box]:
    """Every ISO-BMFF box in ``data`` (descending into container boxes and sample entries);
    an empty list for a file that is not MP4."""
    end = len(data) if end is None else end
    found: list[Box] = []
    offset = start
    while offset + 8 <= end and depth < 8:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1 and offset + 16 <= end:
            size, header = struct.unpack_from(">Q", data, offset + 8)[0], 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end or not kind.isalnum():
            break
        found.append(Box(kind, offset, size, header))
        if kind in CONTAINER_BOXES:
            found += boxes(data, offset + header, offset + size, depth + 1)
        elif kind == b"stsd":  # version/flags, entry count, then sample entries
            found += boxes(data, offset + header + 8, offset + size, depth + 1)
        offset += size
    return found


def elementary_stream(data: bytes) -> bytes | None:
    """The first video stream of a container as a bare Annex-B stream (None if it has none)."""
    import io

    import av

    try:
        with av.open(io.BytesIO(data)) as source:
            if not source.streams.video:
                return None
            stream = source.streams.video[0]
            fmt = {"h264": "h264", "hevc": "hevc"}.get(stream.codec_context.name)
            if fmt is None:
                return None
            out = io.BytesIO()
            with av.open(out, mode="w", format=fmt) as target:
                copy = target.add_stream_from_template(stream)
                for packet in source.demux(stream):
                    if packet.dts is None:
                        continue
                    packet.stream = copy
                    target.mux(packet)
            return out.getvalue()
    except (av.error.FFmpegError, ValueError):
        return None
