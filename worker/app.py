"""The worker's lifecycle in one object: load the replicas, serve the queue, stop them.

``WorkerService`` owns the replica pool: ``start()`` loads and warms every replica before the first
message is received, ``serve()``/``run()`` assemble the clients, the decode threads and the stages
and run one ``Worker`` until SIGTERM/SIGINT, the idle limit or a dead replica, and ``stop()`` stops
the replicas within the shutdown deadline.  Used as a context manager::

    with WorkerService(settings, metrics) as service:
        service.run(install_signals=True)
"""

from __future__ import annotations

import asyncio
import signal
import tempfile
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from worker import verdict as verdicts
from worker.aws import AsyncClients
from worker.evidence import EvidenceTarget
from worker.fault_bound import BoundedPublishes, FaultBound
from worker.hashlists import HashListStore
from worker.logs import get_logger
from worker.metrics import Metrics
from worker.pipeline import Media, Stages, process_job
from worker.near_duplicates import RecentIndex
from worker.publish import Publisher
from worker.replicas import ReplicaPool
from worker.reuse import RecordingPublisher, Reuse
from worker.runner import Worker, WorkerStats
from worker.settings import Settings
from worker.sqs_queue import SqsQueue
from worker.verdict_cache import VerdictCache

log = get_logger(__name__)


class WorkerService:
    """One worker process's replicas and run loop; see the module doc."""

    def __init__(self, settings: Settings, metrics: Metrics,
                 pool: ReplicaPool | None = None) -> None:
        self.settings, self.metrics = settings, metrics
        self.pool = pool or ReplicaPool(settings, on_batch=lambda r: metrics.batch(
            r.replica, r.real_rows, r.batch_size, r.seconds))
        self._recent: RecentIndex | None = None  # see _recent_index

    def start(self) -> None:
        """Load and warm every replica (``AbortStartup`` if one cannot)."""
        self.pool.start()

    def stop(self) -> None:
        """Let queued clips finish and stop the replica threads, within the shutdown deadline."""
        self.pool.stop(timeout=self.settings.shutdown_deadline_s)

    def __enter__(self) -> WorkerService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self, **options: Any) -> WorkerStats:
        """``serve()`` in a new event loop."""
        return asyncio.run(self.serve(**options))

    async def serve(self, *, settings: Settings | None = None, metrics: Metrics | None = None,
                    install_signals: bool = False, keep_verdicts: bool = False) -> WorkerStats:
        """Run one worker on the started pool until stopped or idle; ``ReplicaDied`` if one died,
        ``AwsUnavailable`` if AWS refused it past ``--fatal-after-s``.

        ``settings`` and ``metrics`` replace the service's for this run only (the benchmark runs
        phases with their own idle limit and metrics sink on one warm pool).
        """
        settings, metrics = settings or self.settings, metrics or self.metrics
        settings.require("queue_url", "topic_arn")
        with tempfile.TemporaryDirectory(prefix="modfleet-spool-") as spool, \
                ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode") as pool:
            async with AsyncClients(settings.region, settings.endpoint_url,
                                    settings.profile) as aws:
                reuse = await self._reuse(settings, aws)
                stages = self._stages(settings, aws.s3, pool, Path(spool), reuse)
                queue = SqsQueue(aws.sqs, str(settings.queue_url), settings.dlq_url)
                faults = FaultBound(settings.fatal_after_s)
                publisher = RecordingPublisher(
                    Publisher(BoundedPublishes(aws.sns, faults), settings.topic_arn,
                              settings.publish_retry_s, metrics), reuse, metrics)
                worker = Worker(settings, queue, publisher,
                                lambda job, timings: process_job(job, stages, timings),
                                metrics, keep_verdicts, faults=faults)
                return await self._run(worker, install_signals)

    async def _run(self, worker: Worker, install_signals: bool) -> WorkerStats:
        if install_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, worker.request_stop)
        log.info("worker polling", queue_url=worker.queue.url, replicas=len(self.pool.replicas),
                 batch_size=worker.settings.batch_size,
                 in_flight_limit=worker.settings.in_flight_limit,
                 model=self.pool.identity.name, synthetic=self.pool.identity.synthetic)
        try:
            with self.pool.watching(worker.abort):
                return await worker.run()
        finally:
            log.info("worker stopped", **dict(worker.stats.messages))

    async def _reuse(self, settings: Settings, aws: AsyncClients) -> Reuse:
        """The reuse parts the settings turn on, before the first message: the verdict table
        probed (a missing one stops the worker, exit 2), the known-content lists loaded (a failed
        load is logged and retried at the refresh interval)."""
        hashlists = None
        if settings.records_bucket and settings.fingerprints:
            hashlists = HashListStore(aws.s3, settings.records_bucket, settings.hashlist_prefix,
                                      settings.hashlist_refresh_s)
            await hashlists.current()
        cache = None
        if settings.verdict_table:
            cache = VerdictCache(aws.dynamodb, settings.verdict_table,
                                 settings.verdict_cache_ttl_days * 86400)
            await cache.probe()
        return Reuse(
            cache=cache,
            hashlists=hashlists, recent=self._recent_index(settings),
            near_duplicate_reuse=settings.near_duplicate_reuse,
            fingerprints=settings.fingerprints,
            evidence=(EvidenceTarget(settings.records_bucket, settings.evidence_prefix,
                                     settings.evidence_kms_key_id)
                      if settings.records_bucket and settings.evidence else None))

    def _recent_index(self, settings: Settings) -> RecentIndex | None:
        """The near-duplicate index, only with a verdict table; it outlives one serve() (the
        benchmark serves phases on one pool)."""
        if not (settings.verdict_table and settings.fingerprints
                and settings.near_duplicate_index_size):
            return None
        wanted = (settings.near_duplicate_index_size, settings.near_duplicate_threshold)
        if self._recent is None or (self._recent.capacity, self._recent.threshold) != wanted:
            self._recent = RecentIndex(*wanted)
        return self._recent

    def _stages(self, settings: Settings, s3: Any, decoders: Executor, spool: Path,
                reuse: Reuse = Reuse()) -> Stages:
        context = verdicts.Context(region=settings.region, worker_id=settings.worker_id,
                                   model=self.pool.identity)
        return Stages(media=Media.from_settings(settings, s3, decoders, spool), pool=self.pool,
                      context=context, reuse=reuse)
