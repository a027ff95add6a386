"""The benchmark itself: start Redis, the stand-ins, then each bot as its own process, and
measure acknowledgement latency, throughput, turn latency and Redis memory."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from bot.redis_server import EmbeddedRedis
from tests.harness import EXPERT_CHANNEL, bot_env, free_port
from tests.standins.chat_model import ChatModelStandIn
from tests.standins.slack import BOT_USER, Message, SlackStandIn

REPO = Path(__file__).resolve().parent.parent
READY_BODY = json.dumps({"type": "url_verification", "challenge": "ready", "token": "t"})
FILLER = "Could you check this for me and tell me what you think we should do next about it?"

BOTS = {
    "this bot": [sys.executable, "-m", "bot"],
    "straightforward bot": [sys.executable, "-m", "bench.baseline_bot"],
}


@dataclass
class BotResult:
    name: str
    ack_ms_p50: float = 0.0
    ack_ms_p99: float = 0.0
    ack_ms_max: float = 0.0
    turns_per_second: float = 0.0
    turn_ms_p50: float = 0.0
    turn_ms_p99: float = 0.0
    cpu_ms_per_turn: float = 0.0
    redis_cpu_ms_per_turn: float = 0.0
    bench_cpu_share: float = 0.0  # cores the stand-ins and the load generator used
    memory: dict[int, dict[str, float]] = field(default_factory=dict)
    rounds_turns_per_second: list[float] = field(default_factory=list)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


class Replies:
    """Counts the bot's replies per thread, and wakes whoever waits for one."""

    def __init__(self, slack: SlackStandIn) -> None:
        self.count: dict[str, int] = defaultdict(int)
        self.texts: dict[str, list[str]] = defaultdict(list)
        self.changed: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        slack.post_listeners.append(self._posted)

    def _posted(self, message: Message) -> None:
        if message.thread_ts and message.bot_id:
            self.count[message.thread_ts] += 1
            self.texts[message.thread_ts].append(message.text)
            self.changed[message.thread_ts].set()

    async def wait(self, root: str, count: int, timeout: float = 120.0) -> None:
        async with asyncio.timeout(timeout):
            while self.count[root] < count:
                self.changed[root].clear()
                await self.changed[root].wait()


class Conversation:
    """One asker's thread: a mention, then replies in the thread, each waiting for an answer."""

    def __init__(self, slack: SlackStandIn, replies: Replies, channel: str, name: str) -> None:
        self.slack, self.replies, self.channel, self.name = slack, replies, channel, name
        self.root: str | None = None
        self.turns = 0
        self.text_bytes = 0
        self.acks_ms: list[float] = []
        self.turns_ms: list[float] = []

    async def turn(self, session: aiohttp.ClientSession, url: str) -> None:
        self.turns += 1
        text = f"bench: {self.name} turn {self.turns}. {FILLER}"
        if self.root is None:
            message = Message(
                self.channel, self.slack.next_ts(), "U0ASKER", f"<@{BOT_USER}> {text}"
            )
            self.root = message.ts
            kinds = ("app_mention", "message")  # Slack sends a mention twice
        else:
            message = Message(self.channel, self.slack.next_ts(), "U0ASKER", text, self.root)
            kinds = ("message",)
        self.slack.messages.append(message)
        # Signed before the clock starts: the measure is the bot's, not the generator's.
        events = [self.slack.message_event(message, kind, "channel") for kind in kinds]
        requests = [signed(self.slack, json.dumps(event)) for event in events]
        started = time.perf_counter()
        for body, headers in requests:
            sent = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                status = response.status
            self.acks_ms.append((time.perf_counter() - sent) * 1000)
            if status != 200:
                raise RuntimeError(f"bot answered {status}")
        await self.replies.wait(self.root, self.turns)
        self.turns_ms.append((time.perf_counter() - started) * 1000)
        self.text_bytes += len(text.encode()) + len(self.replies.texts[self.root][-1].encode())


def signed(slack: SlackStandIn, body: str) -> tuple[bytes, dict[str, str]]:
    """A body and the headers Slack would send with it, signed."""
    ts = str(int(time.time()))
    base = f"v0:{ts}:{body}".encode()
    signature = "v0=" + hmac.new(slack.signing_secret.encode(), base, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }
    return body.encode(), headers


async def post_signed(
    session: aiohttp.ClientSession, slack: SlackStandIn, url: str, body: str
) -> int:
    data, headers = signed(slack, body)
    async with session.post(url, data=data, headers=headers) as response:
        await response.read()
        return response.status


async def redis_bytes(client: aioredis.Redis) -> float:
    """Every key's MEMORY USAGE, plus the Search indexes' own memory."""
    total = 0
    async for key in client.scan_iter(count=1000):
        total += await client.memory_usage(key, samples=0) or 0
    for index in await client.execute_command("FT._LIST"):
        info = await client.execute_command("FT.INFO", index)
        info = info if isinstance(info, dict) else dict(zip(info[::2], info[1::2], strict=True))
        total += float(info.get("total_index_memory_sz_mb") or 0) * 1024 * 1024
    return total


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and all its live descendants (a bot's worker processes)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        total += sum(cpu_seconds(int(child)) for child in children)
    return total


async def redis_cpu(client: aioredis.Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def wait_ready(
    session: aiohttp.ClientSession, slack: SlackStandIn, url: str, process: subprocess.Popen[bytes]
) -> None:
    body = READY_BODY
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("bot exited during start-up")
        try:
            if await post_signed(session, slack, url, body) == 200:
                return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("bot did not start")


async def bench_bot(
    name: str,
    *,
    threads: int,
    turns: int,
    memory_turns: tuple[int, ...],
    redis_url: str,
    slack: SlackStandIn,
    model: ChatModelStandIn,
    log_dir: Path,
    measure_memory: bool = True,
) -> BotResult:
    """One round for one bot: started afresh on an empty Redis, measured, stopped."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    await client.flushall()
    port = free_port()
    env = os.environ | bot_env(slack, model, redis_url, port=port, LOG_LEVEL="WARNING")
    log = (log_dir / f"{name.replace(' ', '-')}.log").open("ab")
    # BENCH_PROFILE_PREFIX="py-spy record -o out.txt --format raw --" profiles the bots.
    prefix = os.environ.get("BENCH_PROFILE_PREFIX", "").split()
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, before measuring
        prefix + BOTS[name], cwd=REPO, env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}/slack/events"
    result = BotResult(name)
    replies = Replies(slack)
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=False)
        ) as session:
            await wait_ready(session, slack, url, process)
            # Memory: one thread alone in a fresh Redis, measured as it grows. (It also
            # warms the bot up: every code path of a turn has run once before the load.)
            empty = await redis_bytes(client)
            lone = Conversation(slack, replies, "C0MEMORY", f"{name} memory")
            for n in range(1, (max(memory_turns) if measure_memory else 2) + 1):
                await lone.turn(session, url)
                if measure_memory and n in memory_turns:
                    await asyncio.sleep(0.5)  # let after-reply work settle
                    held = await redis_bytes(client) - empty
                    result.memory[n] = {
                        "bytes": held,
                        "text_bytes": lone.text_bytes,
                        "ratio": held / lone.text_bytes,
                    }
            # Load: many threads talking at once, on connections opened beforehand (as a
            # client that talks to the bot all day has them): the first burst then measures
            # request handling, not thirty TCP handshakes.
            await asyncio.gather(
                *(post_signed(session, slack, url, READY_BODY) for _ in range(threads))
            )
            conversations = [
                Conversation(slack, replies, f"C0LOAD{i % 5}", f"{name} {i}")
                for i in range(threads)
            ]
            cpu_before = cpu_seconds(process.pid)
            redis_cpu_before = await redis_cpu(client)
            own_before = own_cpu()
            started = time.perf_counter()

            async def talk(conversation: Conversation) -> None:
                for _ in range(turns):
                    await conversation.turn(session, url)

            await asyncio.gather(*(talk(c) for c in conversations))
            elapsed = time.perf_counter() - started
            cpu = cpu_seconds(process.pid) - cpu_before
            redis_cpu_used = await redis_cpu(client) - redis_cpu_before
            result.bench_cpu_share = (own_cpu() - own_before) / elapsed
        acks = [a for c in conversations for a in c.acks_ms]
        turn_times = [t for c in conversations for t in c.turns_ms]
        result.ack_ms_p50 = statistics.median(acks)
        result.ack_ms_p99 = percentile(acks, 99)
        result.ack_ms_max = max(acks)
        result.turns_per_second = len(turn_times) / elapsed
        result.turn_ms_p50 = statistics.median(turn_times)
        result.turn_ms_p99 = percentile(turn_times, 99)
        result.cpu_ms_per_turn = cpu * 1000 / len(turn_times)
        result.redis_cpu_ms_per_turn = redis_cpu_used * 1000 / len(turn_times)
        result.rounds_turns_per_second = [result.turns_per_second]
    finally:
        slack.post_listeners.remove(replies._posted)
        process.send_signal(signal.SIGINT if prefix else signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        await client.aclose()
    return result


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def median_of(rounds: list[BotResult]) -> BotResult:
    """Each figure's median over the rounds; memory from the round that measured it."""
    first = rounds[0]
    combined = BotResult(first.name, memory=first.memory)
    for name in (
        "ack_ms_p50",
        "ack_ms_p99",
        "ack_ms_max",
        "turns_per_second",
        "turn_ms_p50",
        "turn_ms_p99",
        "cpu_ms_per_turn",
        "redis_cpu_ms_per_turn",
        "bench_cpu_share",
    ):
        setattr(combined, name, statistics.median(getattr(r, name) for r in rounds))
    combined.rounds_turns_per_second = [r.turns_per_second for r in rounds]
    return combined


async def run(
    *, threads: int, turns: int, memory_turns: tuple[int, ...], bots: list[str], rounds: int
) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="hitl-bench-"))
    server = EmbeddedRedis(data_dir)
    server.start()
    slack, model = SlackStandIn(), ChatModelStandIn()
    await slack.start()
    await model.start()
    slack.members[EXPERT_CHANNEL] = set()
    try:
        client = aioredis.from_url(server.url, decode_responses=True)
        redis_version = (await client.info("server"))["redis_version"]
        await client.aclose()
        rounds_by_bot: dict[str, list[BotResult]] = {name: [] for name in bots}
        for index in range(rounds):
            # The bots take turns, in alternating order: drift in the machine's speed over
            # the run weighs on both alike.
            for name in bots if index % 2 == 0 else bots[::-1]:
                print(f"round {index + 1}/{rounds}: the {name} …", file=sys.stderr, flush=True)
                rounds_by_bot[name].append(
                    await bench_bot(
                        name,
                        threads=threads,
                        turns=turns,
                        memory_turns=memory_turns,
                        redis_url=server.url,
                        slack=slack,
                        model=model,
                        log_dir=data_dir,
                        measure_memory=index == 0,
                    )
                )
        results = [median_of(rounds_by_bot[name]) for name in bots]
    finally:
        await slack.stop()
        await model.stop()
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "machine": machine() | {"redis": redis_version},
        "load": {"threads": threads, "turns_per_thread": turns, "rounds": rounds},
        "results": [asdict(r) for r in results],
    }
