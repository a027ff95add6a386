from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import redis

from bot.redis_server import EmbeddedRedis
from tests.harness import (
    EXPERT_CHANNEL,
    EXPERTS,
    BotProcess,
    InProcessBot,
    bot_env,
    free_port,
)
from tests.standins.chat_model import ChatModelStandIn
from tests.standins.slack import SlackStandIn


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A real Redis with JSON and Search, from the same wheels the bot embeds."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    standin = SlackStandIn()
    await standin.start()
    standin.members[EXPERT_CHANNEL] = set(EXPERTS)
    yield standin
    await standin.stop()


@pytest.fixture
async def model() -> AsyncIterator[ChatModelStandIn]:
    standin = ChatModelStandIn()
    await standin.start()
    yield standin
    await standin.stop()


async def start_bot(
    slack: SlackStandIn, model: ChatModelStandIn, redis_url: str, mode: str, **extra: str
) -> InProcessBot:
    env = bot_env(slack, model, redis_url, port=free_port(), mode=mode, **extra)
    bot = await InProcessBot(env).start()
    slack.delivery = mode
    slack.bot_url = bot.events_url
    if mode == "socket":
        await slack.wait_for_sockets(1)
    return bot


@pytest.fixture(params=["http", "socket"])
async def bot(
    request: pytest.FixtureRequest, slack: SlackStandIn, model: ChatModelStandIn, redis_url: str
) -> AsyncIterator[InProcessBot]:
    """The bot in this process, once over signed HTTP and once over Socket Mode."""
    running = await start_bot(slack, model, redis_url, request.param)
    yield running
    await running.stop()


@pytest.fixture
async def http_bot(
    slack: SlackStandIn, model: ChatModelStandIn, redis_url: str
) -> AsyncIterator[InProcessBot]:
    running = await start_bot(slack, model, redis_url, "http")
    yield running
    await running.stop()


@pytest.fixture
async def make_bot(
    slack: SlackStandIn, model: ChatModelStandIn, redis_url: str
) -> AsyncIterator[Callable[..., Awaitable[InProcessBot]]]:
    """Start in-process bots with extra settings: `await make_bot("http", LEASE_SECONDS="2")`."""
    started: list[InProcessBot] = []

    async def make(mode: str = "http", *, redis: str | None = None, **extra: str) -> InProcessBot:
        running = await start_bot(slack, model, redis or redis_url, mode, **extra)
        started.append(running)
        return running

    yield make
    for running in started:
        await running.stop()


@pytest.fixture
async def spawn_bot(
    slack: SlackStandIn, model: ChatModelStandIn, redis_url: str, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[BotProcess]]]:
    """Start `python -m bot` processes on the test's Redis; all are killed at the end."""
    started: list[BotProcess] = []

    async def spawn(mode: str = "http", **extra: str) -> BotProcess:
        # One worker process each unless a test says otherwise: these tests run several bots.
        extra = {"WORKER_PROCESSES": "1", **extra}
        env = bot_env(slack, model, redis_url, port=free_port(), mode=mode, **extra)
        process = BotProcess(env, tmp_path / f"bot-{len(started)}.log")
        started.append(process)
        await process.start()
        slack.delivery = mode
        if slack.bot_url is None:
            slack.bot_url = process.events_url
        if mode == "socket":
            await slack.wait_for_sockets(sum(1 for p in started if p.process.poll() is None))
        return process

    yield spawn
    for process in started:
        process.kill_all()
