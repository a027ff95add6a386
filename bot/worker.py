"""Workers: read the intake stream, and drain each woken thread under a lease.

Every process runs one `Worker` with up to `concurrency` threads in flight. A wake-up entry
is acknowledged only once its thread has been drained; an entry whose worker died is
reclaimed by any process after its lease runs out. One worker at a time holds a thread: a
second wake-up for a held thread is acknowledged at once, because the holder re-checks the
thread's version before it lets go (all in Lua, so no wake-up falls between the two).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot import keys
from bot.conversations import ConversationService, ExpertPostFailed, LeaseLost

log = logging.getLogger(__name__)

# Of the 10 s a process manager usually allows after SIGTERM: running turns get this long,
# the rest is for handing back what is left and closing connections.
SHUTDOWN_GRACE_SECONDS = 6.0

# KEYS: lock, stream. ARGV: token, lease ms, group, entry id
_ACQUIRE_OR_ACK = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
redis.call('XACK', KEYS[2], ARGV[3], ARGV[4])
redis.call('XDEL', KEYS[2], ARGV[4])
return 0
"""

# KEYS: lock, thread, stream, thread requests. ARGV: token, version seen, group, entry id,
# idle ttl seconds. An idle conversation (not waiting for an expert) starts its expiry clock.
_RELEASE_IF_UNCHANGED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local version = redis.call('HGET', KEYS[2], 'version') or ''
if version ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('XACK', KEYS[3], ARGV[3], ARGV[4])
redis.call('XDEL', KEYS[3], ARGV[4])
if redis.call('HGET', KEYS[2], 'waiting') ~= '1' then
  redis.call('EXPIRE', KEYS[2], ARGV[5])
  redis.call('EXPIRE', KEYS[4], ARGV[5])
end
return 1
"""

# KEYS: lock. ARGV: token, lease ms
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: lock. ARGV: token
_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS: lock, stream. ARGV: token, group, entry id, thread id
_HAND_BACK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('XADD', KEYS[2], '*', 'thread', ARGV[4])
redis.call('XACK', KEYS[2], ARGV[2], ARGV[3])
redis.call('XDEL', KEYS[2], ARGV[3])
return 1
"""


@dataclass
class ThreadLease:
    thread_id: str
    entry_id: str
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    lost: bool = False


class Worker:
    def __init__(
        self,
        redis: aioredis.Redis,
        conversations: ConversationService,
        *,
        concurrency: int,
        lease_seconds: float,
        idle_ttl_seconds: int,
        consumer: str | None = None,
    ) -> None:
        self._redis = redis
        self._conversations = conversations
        self._concurrency = concurrency
        self._lease_ms = int(lease_seconds * 1000)
        self._idle_ttl = idle_ttl_seconds
        # An entry idle this long belongs to a dead worker: its lease has run out too.
        self._reclaim_idle_ms = int(self._lease_ms * 1.5) + 500
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._redis_ok = True  # for logging the changes, once each
        self._acquire = redis.register_script(_ACQUIRE_OR_ACK)
        self._release = redis.register_script(_RELEASE_IF_UNCHANGED)
        self._renew = redis.register_script(_RENEW)
        self._drop = redis.register_script(_DROP)
        self._hand_back = redis.register_script(_HAND_BACK)
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._slot_free = asyncio.Event()
        self._stopping = False
        self._loops: list[asyncio.Task[None]] = []

    @property
    def in_flight(self) -> int:
        """Threads this worker is draining now."""
        return len(self._in_flight)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.ensure_group(self._redis)
        self._loops = [
            asyncio.create_task(self._read_loop(), name="intake-reader"),
            asyncio.create_task(self._reclaim_loop(), name="intake-reclaimer"),
        ]

    @staticmethod
    async def ensure_group(redis: aioredis.Redis) -> None:
        try:
            await redis.xgroup_create(keys.INTAKE_STREAM, keys.INTAKE_GROUP, id="0", mkstream=True)
        except RedisError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def stop(self, grace_seconds: float) -> None:
        """Take no new work; let running threads finish for `grace_seconds`, then hand the
        rest back to the stream so another process picks them up at once."""
        self._stopping = True
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        running = list(self._in_flight.values())
        if running:
            log.info("Waiting up to %.1f s for %d running turns", grace_seconds, len(running))
            _, still_running = await asyncio.wait(running, timeout=grace_seconds)
            for task in still_running:
                task.cancel()
            await asyncio.gather(*still_running, return_exceptions=True)
        with contextlib.suppress(RedisError):
            if not await self._has_pending():
                await self._redis.xgroup_delconsumer(
                    keys.INTAKE_STREAM, keys.INTAKE_GROUP, self.consumer
                )

    async def _has_pending(self) -> bool:
        info = await self._redis.xpending_range(
            keys.INTAKE_STREAM,
            keys.INTAKE_GROUP,
            min="-",
            max="+",
            count=1,
            consumername=self.consumer,
        )
        return bool(info)

    # ------------------------------------------------------------------ reading

    def _free_slots(self) -> int:
        return self._concurrency - len(self._in_flight)

    async def _read_loop(self) -> None:
        backoff = 0.2
        while not self._stopping:
            free = self._free_slots()
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            try:
                # One entry at a time: with several worker processes, each takes work only
                # when its loop comes back for it, so a busy one does not hoard a burst.
                response = await self._redis.xreadgroup(
                    keys.INTAKE_GROUP,
                    self.consumer,
                    {keys.INTAKE_STREAM: ">"},
                    count=1,
                    block=1000,
                )
            except RedisError as exc:
                self._redis_down(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                if "NOGROUP" in str(exc):
                    with contextlib.suppress(RedisError):
                        await self.ensure_group(self._redis)
                continue
            self._redis_up()
            backoff = 0.2
            for _stream, entries in response or []:
                for entry_id, fields in entries:
                    self._spawn(entry_id, fields)

    async def _reclaim_loop(self) -> None:
        """Pick up wake-ups whose worker died (or failed), wherever they were read."""
        interval = max(0.5, self._lease_ms / 2000)
        last_cleanup = time.monotonic()
        while not self._stopping:
            await asyncio.sleep(interval)
            free = self._free_slots()
            if free <= 0:
                continue
            try:
                _next, claimed, *_ = await self._redis.xautoclaim(
                    keys.INTAKE_STREAM,
                    keys.INTAKE_GROUP,
                    self.consumer,
                    min_idle_time=self._reclaim_idle_ms,
                    start_id="0-0",
                    count=free,
                )
                if time.monotonic() - last_cleanup > 300:
                    last_cleanup = time.monotonic()
                    await self._forget_dead_consumers()
            except RedisError as exc:
                self._redis_down(exc)
                continue
            for entry_id, fields in claimed:
                if fields:  # None when the entry was deleted meanwhile
                    log.info("Reclaimed wake-up %s for thread %s", entry_id, fields.get("thread"))
                    self._spawn(entry_id, fields)

    async def _forget_dead_consumers(self) -> None:
        for info in await self._redis.xinfo_consumers(keys.INTAKE_STREAM, keys.INTAKE_GROUP):
            if info.get("pending") == 0 and info.get("idle", 0) > 3_600_000:
                await self._redis.xgroup_delconsumer(
                    keys.INTAKE_STREAM, keys.INTAKE_GROUP, info["name"]
                )

    def _redis_down(self, exc: BaseException) -> None:
        if self._redis_ok:
            log.error("Redis is unreachable (%s); retrying until it is back", exc)
        self._redis_ok = False

    def _redis_up(self) -> None:
        if not self._redis_ok:
            log.info("Redis is reachable again")
        self._redis_ok = True

    # ------------------------------------------------------------------ draining a thread

    def _spawn(self, entry_id: str, fields: dict[str, str]) -> None:
        thread_id = fields.get("thread")
        if not thread_id or entry_id in self._in_flight:
            return
        task = asyncio.create_task(self._drain(ThreadLease(thread_id, entry_id)))
        self._in_flight[entry_id] = task

        def done(_: asyncio.Task[None]) -> None:
            self._in_flight.pop(entry_id, None)
            self._slot_free.set()

        task.add_done_callback(done)

    async def _drain(self, lease: ThreadLease) -> None:
        thread_id = lease.thread_id
        try:
            acquired = await self._acquire(
                keys=[keys.lock(thread_id), keys.INTAKE_STREAM],
                args=[lease.token, self._lease_ms, keys.INTAKE_GROUP, lease.entry_id],
            )
        except RedisError as exc:
            self._redis_down(exc)
            return  # the entry stays pending and is reclaimed later
        if not acquired:
            return  # another worker holds the thread and will see this wake-up's version
        heartbeat = asyncio.create_task(self._heartbeat(lease))
        try:
            while True:
                progressed, version = await self._conversations.step(thread_id, lease)
                if progressed:
                    continue
                released = await self._release(
                    keys=[
                        keys.lock(thread_id),
                        keys.thread(thread_id),
                        keys.INTAKE_STREAM,
                        keys.thread_requests(thread_id),
                    ],
                    args=[lease.token, version, keys.INTAKE_GROUP, lease.entry_id, self._idle_ttl],
                )
                if released == 1:
                    return
                if released == -1:
                    raise LeaseLost(thread_id)
        except asyncio.CancelledError:
            with contextlib.suppress(RedisError):
                await asyncio.shield(self._hand_back_lease(lease))
            raise
        except LeaseLost:
            log.warning("Lost the lease on thread %s; another worker has it", thread_id)
        except Exception as exc:
            await self._failed(lease, exc)
        finally:
            heartbeat.cancel()

    async def _failed(self, lease: ThreadLease, exc: Exception) -> None:
        """Leave the wake-up pending: it is reclaimed, and the thread retried, after a lease."""
        thread_id = lease.thread_id
        if isinstance(exc, RedisError):
            self._redis_down(exc)
        elif isinstance(exc, ExpertPostFailed):
            pass  # logged where it happened; retried for as long as it takes
        else:
            log.exception("Work on thread %s failed; it will be retried", thread_id)
            with contextlib.suppress(RedisError):
                await self._conversations.record_failure(thread_id, exc)
        with contextlib.suppress(RedisError):
            await self._drop(keys=[keys.lock(thread_id)], args=[lease.token])

    async def _hand_back_lease(self, lease: ThreadLease) -> None:
        await self._hand_back(
            keys=[keys.lock(lease.thread_id), keys.INTAKE_STREAM],
            args=[lease.token, keys.INTAKE_GROUP, lease.entry_id, lease.thread_id],
        )

    async def _heartbeat(self, lease: ThreadLease) -> None:
        """Keep the lease, and keep the wake-up from looking abandoned, while we work."""
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            try:
                held = await self._renew(
                    keys=[keys.lock(lease.thread_id)], args=[lease.token, self._lease_ms]
                )
                await self._redis.xclaim(
                    keys.INTAKE_STREAM,
                    keys.INTAKE_GROUP,
                    self.consumer,
                    min_idle_time=0,
                    message_ids=[lease.entry_id],
                    justid=True,
                )
            except RedisError as exc:
                self._redis_down(exc)
                continue
            if not held:
                lease.lost = True
                return
