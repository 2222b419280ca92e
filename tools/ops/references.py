"""Which S3 objects a queue message refers to, for filtering dead letters.

The worker's own parser (worker/messages.py) reads every accepted format; a dead-letter queue is
exactly where malformed bodies live, so here a body it rejects as poison refers to no object and
never matches ``--match``, instead of raising.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.exceptions import PoisonMessage
from worker.messages import parse_body


@dataclass(frozen=True)
class ObjectRef:
    """One S3 object a message refers to."""

    bucket: str
    key: str


def object_refs(body: str) -> tuple[ObjectRef, ...]:
    """Every object the body refers to, in order; () for a body the worker would dead-letter."""
    try:
        return tuple(ObjectRef(job.bucket, job.key) for job in parse_body(body).jobs)
    except PoisonMessage:
        return ()
