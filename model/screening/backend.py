"""The screening wrapper: NudeNet over every row, then the LLM backend, labels merged.

With ``config.cascade`` a row whose screening result is decisive (its labels already ``block``)
skips the LLM: it is handed to the inner backend as a padding row, so static batch shapes hold, and
when every real row is decisive the LLM is not called at all.  Screening alone never allows a
video, since the detector sees only nudity and the other categories need the LLM.
"""

from __future__ import annotations

import os

import numpy as np

from model.api import Backend, Batch, Clip, DeviceSlot, Label, ModelIdentity, ModelOutput
from model.policy import DECISIONS, Policy, load_policy
from model.screening.nudenet import NudeNetScreener
from model.config import ModelConfig

DECISIVE = "block"


class ScreeningBackend(Backend):
    """Wraps ``inner``: screening labels first, LLM labels after, the stricter decision wins."""

    def __init__(self, config: ModelConfig, slot: DeviceSlot, inner: Backend,
                 screener: NudeNetScreener | None = None, policy: Policy | None = None) -> None:
        self.config, self.slot, self.inner = config, slot, inner
        self.policy = policy or getattr(inner, "policy", None) or load_policy(config.policy_file)
        self.screener = screener or NudeNetScreener(self.policy, _screening_threads(config, slot))
        self.stats = {"rows": 0, "llm_rows_skipped": 0, "llm_batches_skipped": 0}

    def load(self) -> None:
        self.screener.load()
        self.inner.load()

    def warm_up(self) -> None:
        n, size = self.config.frames_per_video, self.config.frame_size
        self.screener.screen([Clip(np.zeros((n, size, size, 3), np.uint8), (0,) * n, "warm-up")])
        self.inner.warm_up()

    def infer(self, batch: Batch) -> list[ModelOutput | None]:
        """Screen every real row, run the LLM where still needed, merge per row."""
        real = [row for row in batch.rows if row is not None]
        screened = iter(self.screener.screen(real))
        screening = [next(screened) if row is not None else () for row in batch.rows]
        decisive = [row is not None and self.config.cascade
                    and self.policy.decide(labels) == DECISIVE
                    for row, labels in zip(batch.rows, screening)]
        llm_rows = tuple(None if skip else row for row, skip in zip(batch.rows, decisive))
        llm = (self.inner.infer(Batch(rows=llm_rows)) if any(r is not None for r in llm_rows)
               else [None] * len(llm_rows))
        self._count(batch, decisive, llm_rows)
        return [None if row is None else self._merge(labels, out)
                for row, labels, out in zip(batch.rows, screening, llm)]

    def shutdown(self) -> None:
        self.screener.close()
        self.inner.shutdown()

    @property
    def identity(self) -> ModelIdentity:
        inner = self.inner.identity
        # The screening stage changes verdicts, so it is part of the version (and idempotency key).
        return ModelIdentity(name=inner.name, version=f"{inner.version}+screening-nudenet",
                             backend=inner.backend, quantization=inner.quantization,
                             synthetic=inner.synthetic, policy_version=inner.policy_version)

    def _merge(self, screening: tuple[Label, ...], llm: ModelOutput | None) -> ModelOutput:
        decision = self.policy.decide(screening)
        if llm is None:  # skipped by the cascade: screening was decisive
            return ModelOutput(labels=screening, decision=decision,
                               reason="cascade: screening was decisive, LLM skipped")
        worst = max(decision, llm.decision, key=DECISIONS.index)
        return ModelOutput(labels=screening + llm.labels, decision=worst, reason=llm.reason,
                           text=llm.text, tokens_generated=llm.tokens_generated)

    def _count(self, batch: Batch, decisive: list[bool], llm_rows: tuple) -> None:
        self.stats["rows"] += batch.real_rows
        self.stats["llm_rows_skipped"] += sum(decisive)
        if all(r is None for r in llm_rows):
            self.stats["llm_batches_skipped"] += 1


def _screening_threads(config: ModelConfig, slot: DeviceSlot) -> int:
    # On CPU the replica's share of cores; on a GPU or NeuronCore slot the host's cores are idle
    # while the accelerator works, so each replica takes its share of them.
    if slot.kind == "cpu":
        return max(1, slot.cpu_threads)
    return max(1, (os.cpu_count() or 1) // config.replicas)
