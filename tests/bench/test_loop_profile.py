"""The paced bench's loop profile charges CPU to worker stages that exist, through the worker's own
stage functions."""

from __future__ import annotations

import asyncio
import inspect
import sys
from concurrent.futures import ThreadPoolExecutor

from tools.lab.bench.loop_profile import STAGES, LoopProfile
from tools.lab.harness import upload
from worker import pipeline
from worker.aws import AsyncClients
from worker.records import Job
from worker.settings import Settings


def coroutine_functions(module) -> list[str]:
    """Names of the coroutine functions (and methods) defined in ``module``."""
    found = []
    for name, obj in vars(module).items():
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        members = vars(obj).items() if inspect.isclass(obj) else [(name, obj)]
        found += [n for n, member in members if inspect.iscoroutinefunction(member)]
    return found


def test_every_stage_names_a_worker_module_whose_coroutines_run_on_the_loop():
    for module, stage in STAGES.items():
        assert sys.modules[module.__name__] is module and module.__name__.startswith("worker.")
        assert coroutine_functions(module), f"{module.__name__} ({stage}) has no coroutines"
    assert {"fetch", "publish_settle", "receive_dispatch", "pipeline_waits"} <= set(
        STAGES.values())


def test_a_fetch_through_the_pipeline_is_charged_to_fetch(stack, tmp_path):
    body = tmp_path / "object.bin"
    body.write_bytes(b"x" * 100_000)
    upload(stack, body, "objects/one.bin")
    profile = LoopProfile()

    async def scenario() -> int:
        async with AsyncClients(stack.region, stack.endpoint_url) as aws:
            with ThreadPoolExecutor(1) as pool:
                media = pipeline.Media.from_settings(Settings(), aws.s3, pool, tmp_path)
                job = Job(stack.bucket, "objects/one.bin", size=100_000)
                fetched = await asyncio.create_task(pipeline.fetch(job, media))
                fetched.discard()
                return fetched.size_bytes

    with profile.installed():
        assert asyncio.run(scenario()) == 100_000
    assert profile.cpu_s["fetch"] > 0
