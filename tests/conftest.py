from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from bot.redis_server import EmbeddedRedis
from tests.harness import (
    EXPERT_CHANNEL,
    EXPERTS,
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
