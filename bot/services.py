"""The service layer, built once from settings: what listeners and workers call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import redis.asyncio as aioredis
from langchain_openai import ChatOpenAI
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.answers import AnswerService
from bot.chat_model import LeanChatOpenAI
from bot.conversations import ConversationService
from bot.experts import ExpertDirectory
from bot.intake import Intake
from bot.redis_server import check_modules, redacted_url
from bot.requests import RequestStore
from bot.settings import Settings
from bot.slack_effects import SlackEffects
from bot.worker import Worker
from graph import build_graph
from graph.checkpoint import CompactRedisSaver

log = logging.getLogger(__name__)
T = TypeVar("T")

WARM_CONNECTIONS = 32


@dataclass
class Services:
    """What a process needs. Every process serving Slack has the intake side; a process
    that runs turns (the server itself, or a worker process) also has a worker."""

    settings: Settings
    redis: aioredis.Redis
    slack: AsyncWebClient
    intake: Intake
    requests: RequestStore
    experts: ExpertDirectory
    answers: AnswerService
    checkpointer: CompactRedisSaver | None = None
    worker: Worker | None = None

    async def redis_ok(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), 2))
        except Exception:
            return False

    async def aclose(self) -> None:
        if self.slack.session is not None:
            await self.slack.session.close()
        await self.redis.aclose()
        if self.checkpointer is not None:
            await self.checkpointer.aclose()


def slack_client(settings: Settings) -> AsyncWebClient:
    """The Web API client: waits out 429s (Retry-After) and retries 5xx and broken links.
    One HTTP session for all calls (without it, each call opens a session and a connection)."""
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        session=aiohttp.ClientSession(),
        timeout=30,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
            AsyncConnectionErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=3),
        ],
    )


def chat_model(settings: Settings) -> ChatOpenAI:
    """The model client: the openai library retries timeouts, 429 and 5xx with backoff;
    TURN_TIMEOUT_SECONDS bounds the whole turn."""
    return LeanChatOpenAI(
        model=settings.openai_model,
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        timeout=settings.model_timeout_seconds,
        max_retries=settings.model_max_retries,
    )


def redis_client(url: str, *, decode: bool = True) -> aioredis.Redis:
    return aioredis.from_url(
        url,
        decode_responses=decode,
        socket_connect_timeout=5,
        socket_timeout=15,  # above the worker's 1 s blocking reads
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=2, base=0.1), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


async def wait_for_redis(client: aioredis.Redis, url: str) -> None:
    """Block until Redis answers, logging while it does not; refuse one without modules."""
    delay = 0.5
    while True:
        try:
            await client.ping()
            break
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.warning("Waiting for Redis at %s: %s", redacted_url(url), exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)
    await check_modules(client, url)
    # Open a pool's worth of connections now: a burst of Slack deliveries would otherwise
    # open them all at once, each with its handshake, while Slack waits for the acks.
    await asyncio.gather(*(client.ping() for _ in range(WARM_CONNECTIONS)))


def make_checkpointer(settings: Settings, redis_url: str) -> CompactRedisSaver:
    """Checkpoints in the same Redis, on a client of their own (bytes, not text)."""
    return CompactRedisSaver(
        redis_client(redis_url, decode=False),
        ttl_seconds=int(settings.conversation_ttl_days * 86_400),
    )


async def until_stopped(work: Coroutine[Any, Any, T], stop: asyncio.Event) -> T | None:
    """`work`'s result, or None if `stop` is set first (then `work` is cancelled).

    Start-up waits for Redis as long as it takes; a SIGTERM meanwhile must still stop us.
    """
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def build_services(settings: Settings, redis_url: str, *, run_turns: bool) -> Services:
    redis = redis_client(redis_url)
    await wait_for_redis(redis, redis_url)
    slack = slack_client(settings)
    requests = RequestStore(redis)
    experts = ExpertDirectory(
        slack,
        expert_channel=settings.expert_channel,
        expert_users=settings.expert_users,
        expert_usergroup=settings.expert_usergroup,
    )
    effects = SlackEffects(slack, redis)
    services = Services(
        settings=settings,
        redis=redis,
        slack=slack,
        intake=Intake(redis),
        requests=requests,
        experts=experts,
        answers=AnswerService(client=slack, requests=requests, experts=experts, effects=effects),
    )
    if run_turns:
        ttl_seconds = int(settings.conversation_ttl_days * 86_400)
        checkpointer = make_checkpointer(settings, redis_url)
        graph = build_graph(
            chat_model(settings), checkpointer, context_tokens=settings.context_tokens
        )
        conversations = ConversationService(
            graph=graph,
            checkpointer=checkpointer,
            redis=redis,
            effects=effects,
            requests=requests,
            expert_channel=settings.expert_channel,
            conversation_ttl_seconds=ttl_seconds,
            turn_timeout_seconds=settings.turn_timeout_seconds,
        )
        services.checkpointer = checkpointer
        services.worker = Worker(
            redis,
            conversations,
            concurrency=settings.worker_concurrency,
            lease_seconds=settings.lease_seconds,
            idle_ttl_seconds=ttl_seconds,
        )
    return services
