"""Worker processes: turns run in processes of their own, so the process that answers
Slack stays quick to acknowledge, and every core takes part.

The serving process starts `WORKER_PROCESSES` workers and restarts any that dies. A worker
runs a `Worker` on the shared intake stream, exactly as a second bot would. Workers die with
their parent (Linux tells them, even after `kill -9`), and hand their turns back on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import time
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as ProcessEvent

from bot.logs import configure_logging
from bot.osutil import die_with_parent
from bot.services import build_services, until_stopped
from bot.settings import Settings
from bot.worker import SHUTDOWN_GRACE_SECONDS

log = logging.getLogger(__name__)

WORKER_NICENESS = 10
RESTART_BACKOFF_SECONDS = (0.5, 1, 2, 5, 10)


def worker_main(settings: Settings, redis_url: str, index: int, ready: ProcessEvent) -> None:
    """Entry point of a worker process."""
    die_with_parent()
    # Turns are throughput work; Slack's acknowledgements are latency work. A lower CPU
    # priority lets the serving process answer Slack at once even when turns fill the CPU.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    configure_logging(settings.log_level, settings.secrets())
    asyncio.run(_work(settings, redis_url, index, ready))


async def _work(settings: Settings, redis_url: str, index: int, ready: ProcessEvent) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    services = await until_stopped(build_services(settings, redis_url, run_turns=True), stop)
    if services is None:
        return  # stopped while waiting for Redis
    assert services.worker is not None
    try:
        await services.worker.start()
        ready.set()
        log.info("Worker process %d ready", index)
        await stop.wait()
    finally:
        await services.worker.stop(SHUTDOWN_GRACE_SECONDS)
        await services.aclose()


class WorkerPool:
    def __init__(self, settings: Settings, redis_url: str, count: int) -> None:
        self.count = count
        self._settings = settings
        self._redis_url = redis_url
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[BaseProcess | None] = [None] * count
        self._ready: list[ProcessEvent] = [self._context.Event() for _ in range(count)]
        self._restarts = [0] * count
        self._stopping = False
        self._watcher: asyncio.Task[None] | None = None

    @property
    def alive(self) -> int:
        return sum(1 for p in self._processes if p is not None and p.is_alive())

    @property
    def ready(self) -> int:
        """Workers reading the intake stream now."""
        return sum(
            1
            for p, ready in zip(self._processes, self._ready, strict=True)
            if p is not None and p.is_alive() and ready.is_set()
        )

    def start(self) -> None:
        for index in range(self.count):
            self._spawn(index)
        self._watcher = asyncio.create_task(self._watch(), name="worker-pool-watch")

    def _spawn(self, index: int) -> None:
        self._ready[index].clear()
        process = self._context.Process(
            target=worker_main,
            args=(self._settings, self._redis_url, index, self._ready[index]),
            name=f"bot-worker-{index}",
        )
        process.start()
        self._processes[index] = process

    async def _watch(self) -> None:
        """Restart a worker that died, with a growing pause if it keeps dying."""
        started_at = [time.monotonic()] * self.count
        while not self._stopping:
            await asyncio.sleep(0.5)
            for index, process in enumerate(self._processes):
                if self._stopping or process is None or process.is_alive():
                    continue
                log.error("Worker process %d exited (code %s); restarting it",
                          index, process.exitcode)  # fmt: skip
                if time.monotonic() - started_at[index] > 60:
                    self._restarts[index] = 0
                backoff = RESTART_BACKOFF_SECONDS
                pause = backoff[min(self._restarts[index], len(backoff) - 1)]
                self._restarts[index] += 1
                await asyncio.sleep(pause)
                if not self._stopping:
                    self._spawn(index)
                    started_at[index] = time.monotonic()

    async def stop(self, timeout: float) -> None:
        """SIGTERM to every worker; they finish or hand back their turns. Kill stragglers."""
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        running = [p for p in self._processes if p is not None and p.is_alive()]
        for process in running:
            process.terminate()
        deadline = time.monotonic() + timeout
        for process in running:
            await asyncio.to_thread(process.join, max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("%s did not stop in time; killing it", process.name)
                process.kill()
                await asyncio.to_thread(process.join, 2)
