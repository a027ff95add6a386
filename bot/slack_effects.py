"""Slack calls with a visible effect, each made once even when a job runs again.

A post is recorded in Redis under an effect key once Slack returns its ts. A crash between
Slack's answer and that record would post twice on the re-run, so each post carries its key
in Slack message metadata, and a re-run first looks for it in the channel.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis.asyncio as aioredis
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import keys

log = logging.getLogger(__name__)

EFFECT_EVENT_TYPE = "hitl_effect"
# Only a job re-run after a crash reads these, within minutes (a lease): a day is plenty.
EFFECT_TTL_SECONDS = 24 * 3600

# Errors that no retry will cure: the message cannot be delivered where it was aimed.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "msg_too_long",
        "no_text",
        "invalid_blocks",
        "invalid_arguments",
        "message_not_found",
        "cant_update_message",
        "thread_not_found",
        "user_not_found",
        "user_not_in_channel",
    }
)


def slack_error(exc: BaseException) -> str | None:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or "unknown_error")
    return None


def is_permanent(exc: BaseException) -> bool:
    return slack_error(exc) in PERMANENT_ERRORS


class SlackEffects:
    def __init__(self, client: AsyncWebClient, redis: aioredis.Redis) -> None:
        self.client = client
        self._redis = redis

    async def post_once(
        self,
        effect_key: str,
        *,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        fresh: bool = False,
    ) -> str:
        """Post a message unless this effect already happened; returns the message's ts.

        `fresh`: the caller knows this effect was never attempted (its job started just now),
        so the lookup is skipped, and so is the record of the post: only a re-run of the job
        would read it, and a re-run finds the post in Slack by its metadata.
        """
        record_key = keys.effect(effect_key)
        record = {} if fresh else await self._redis.hgetall(record_key)
        if record.get("ts"):
            return str(record["ts"])
        if record.get("attempted_at"):
            found = await self._find_posted(
                effect_key, channel, thread_ts, float(record["attempted_at"])
            )
            if found:
                await self._record(record_key, ts=found)
                return found
        await self._record(record_key, attempted_at=f"{time.time() - 1:.6f}")
        response = await self.client.chat_postMessage(
            channel=channel,
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
            metadata={"event_type": EFFECT_EVENT_TYPE, "event_payload": {"key": effect_key}},
        )
        ts = str(response["ts"])
        if not fresh:
            await self._record(record_key, ts=ts)
        return ts

    async def _record(self, record_key: str, **fields: str) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(record_key, mapping=fields)
            pipe.expire(record_key, EFFECT_TTL_SECONDS)
            await pipe.execute()

    async def _find_posted(
        self, effect_key: str, channel: str, thread_ts: str | None, since: float
    ) -> str | None:
        """The ts of a message this effect posted before a crash, if Slack has one."""
        try:
            if thread_ts:
                response = await self.client.conversations_replies(
                    channel=channel,
                    ts=thread_ts,
                    oldest=f"{since:.6f}",
                    include_all_metadata=True,
                    limit=200,
                )
            else:
                response = await self.client.conversations_history(
                    channel=channel, oldest=f"{since:.6f}", include_all_metadata=True, limit=200
                )
        except SlackApiError as exc:
            log.warning(
                "Could not check %s for an earlier post of %s (%s); posting it",
                channel,
                effect_key,
                slack_error(exc),
            )
            return None
        for message in response.get("messages") or []:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("key") == effect_key:
                return str(message["ts"])
        return None

    async def update(
        self, *, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        await self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)

    async def ephemeral(
        self, *, channel: str, user: str, text: str, thread_ts: str | None = None
    ) -> None:
        try:
            await self.client.chat_postEphemeral(
                channel=channel, user=user, text=text, thread_ts=thread_ts
            )
        except SlackApiError as exc:
            log.warning("Could not tell %s in %s: %s", user, channel, slack_error(exc))

    async def react(self, *, channel: str, ts: str, name: str, on: bool) -> None:
        """Add or remove a reaction; a reaction already in that state is fine."""
        try:
            if on:
                await self.client.reactions_add(channel=channel, timestamp=ts, name=name)
            else:
                await self.client.reactions_remove(channel=channel, timestamp=ts, name=name)
        except SlackApiError as exc:
            if slack_error(exc) not in ("already_reacted", "no_reaction"):
                log.info("Reaction %s on %s/%s failed: %s", name, channel, ts, slack_error(exc))

    async def permalink(self, *, channel: str, ts: str) -> str | None:
        try:
            response = await self.client.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError as exc:
            log.info("No permalink for %s/%s: %s", channel, ts, slack_error(exc))
            return None
        return response.get("permalink")
