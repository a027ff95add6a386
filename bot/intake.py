"""From "Slack delivered it" to "a worker will run it": the one path every message takes.

A message is recorded in Redis, atomically with its dedupe marker and a wake-up on the intake
stream, before Slack gets its acknowledgement. Workers (bot/worker.py) read the stream.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis

from bot import keys
from bot.domain import IncomingMessage
from bot.formatting import slack_to_plain
from bot.payload import text_at

# Message subtypes that are someone writing to the bot; edits, joins, bot posts are not.
HANDLED_SUBTYPES = {None, "file_share", "thread_broadcast"}
SEEN_TTL_SECONDS = 24 * 3600  # Slack retries within the hour; a day is margin enough

# KEYS: seen, inbox, thread, stream. ARGV: item, thread id, seen ttl, team, channel, root, now,
# "1" if the message counts only in a thread the bot already takes part in.
_ACCEPT_MESSAGE = """
if ARGV[8] == '1' and redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3]) then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], 'team', ARGV[4], 'channel', ARGV[5], 'root', ARGV[6],
           'active_at', ARGV[7])
redis.call('HINCRBY', KEYS[3], 'version', 1)
-- Work is waiting: the thread may not expire before a worker has seen it (the worker sets
-- the idle expiry again when it lets go of the thread).
redis.call('PERSIST', KEYS[3])
redis.call('XADD', KEYS[4], '*', 'thread', ARGV[2])
return 1
"""


def message_from_event(
    event: dict[str, Any], *, team_id: str, bot_user_id: str | None
) -> IncomingMessage | None:
    """The message an event carries, if it is one the bot may answer (thread rules aside)."""
    if event.get("subtype") not in HANDLED_SUBTYPES:
        return None
    user = text_at(event, "user")
    if not user or event.get("bot_id") or user == bot_user_id:
        return None
    channel, ts = text_at(event, "channel"), text_at(event, "ts")
    if not channel or not ts:
        return None
    # The installation's team, not the author's: in a shared channel they differ.
    team = team_id or text_at(event, "team")
    if not team:
        return None
    return IncomingMessage(
        team=team,
        channel=channel,
        ts=ts,
        root=text_at(event, "thread_ts") or ts,
        user=user,
        text=slack_to_plain(text_at(event, "text") or "", bot_user_id),
    )


class Intake:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._accept = redis.register_script(_ACCEPT_MESSAGE)

    async def accept_event(
        self, event: dict[str, Any], *, team_id: str, bot_user_id: str | None
    ) -> bool:
        """Record a `message` or `app_mention` event if the bot should answer it.

        Returns True when a new message was recorded, False when it was not for the bot or
        was a duplicate (the same message arrives as `app_mention` and as `message`).
        """
        mentioned = event.get("type") == "app_mention" or (
            bool(bot_user_id) and f"<@{bot_user_id}" in (text_at(event, "text") or "")
        )
        message = message_from_event(event, team_id=team_id, bot_user_id=bot_user_id)
        if message is None:
            return False
        direct = event.get("channel_type") == "im"
        known_thread_only = not (mentioned or direct)
        if known_thread_only and message.root == message.ts:
            return False  # a top-level channel message without a mention
        return await self.accept_message(message, known_thread_only=known_thread_only)

    async def accept_message(
        self, message: IncomingMessage, *, known_thread_only: bool = False
    ) -> bool:
        """Record the message (atomically, once). With `known_thread_only`, only if its
        thread is one the bot takes part in."""
        thread = message.thread
        recorded = await self._accept(
            keys=[
                keys.seen(message.id),
                keys.inbox(thread.id),
                keys.thread(thread.id),
                keys.INTAKE_STREAM,
            ],
            args=[
                message.to_json(),
                thread.id,
                SEEN_TTL_SECONDS,
                thread.team,
                thread.channel,
                thread.root,
                f"{time.time():.3f}",
                "1" if known_thread_only else "0",
            ],
        )
        return bool(recorded)
