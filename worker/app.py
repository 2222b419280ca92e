"""Assemble a worker from settings: clients, replica pool, decode pool, stages; run it."""

from __future__ import annotations

import asyncio
import signal
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from worker import verdict as verdicts
from worker.aws import AsyncClients
from worker.decode import DecodeLimits
from worker.logs import get_logger
from worker.metrics import Metrics
from worker.pipeline import Stages
from worker.publish import Publisher
from worker.replicas import ReplicaPool
from worker.runner import Worker, WorkerStats
from worker.settings import Settings

log = get_logger(__name__)


def start_pool(settings: Settings, metrics: Metrics) -> ReplicaPool:
    """Load and warm every replica before the first message is received."""
    pool = ReplicaPool(settings, on_batch=lambda r: metrics.batch(r.replica, r.real_rows,
                                                                  r.batch_size, r.seconds))
    pool.start()
    return pool


async def serve(settings: Settings, pool: ReplicaPool, metrics: Metrics,
                install_signals: bool = True, keep_verdicts: bool = False) -> WorkerStats:
    """Run one worker until SIGTERM/SIGINT or the idle limit; the pool is the caller's to stop."""
    limits = DecodeLimits(settings.frames_per_video, settings.frame_size,
                          settings.max_duration_s, settings.max_pixels, settings.decode_deadline_s)
    context = verdicts.Context(region=settings.region, worker_id=settings.worker_id,
                               model=pool.identity)
    with tempfile.TemporaryDirectory(prefix="modfleet-spool-") as spool, \
            ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode") as decoders:
        async with AsyncClients(settings.region, settings.endpoint_url) as aws:
            stages = Stages(s3=aws.s3, pool=pool, decode_pool=decoders, limits=limits,
                            max_object_bytes=settings.max_object_bytes, spool_dir=Path(spool),
                            context=context)
            publisher = Publisher(aws.sns, settings.topic_arn, settings.publish_retry_s)
            worker = Worker(settings, aws.sqs, publisher, stages, metrics, keep_verdicts)
            if install_signals:
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, worker.request_stop)
            log.info("worker polling", queue_url=settings.queue_url, replicas=len(pool.replicas),
                     batch_size=settings.batch_size, in_flight_limit=settings.in_flight_limit,
                     model=pool.identity.name, synthetic=pool.identity.synthetic)
            stats = await worker.run()
    log.info("worker stopped", **dict(stats.messages))
    return stats
