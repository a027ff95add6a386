"""Long threads are remembered, idle ones are forgotten, waiting ones are kept."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from tests.e2e.helpers import ASKER, CHANNEL, answer, ask_expert, request_messages
from tests.harness import EXPERTS, eventually
from tests.standins.chat_model import ChatModelStandIn
from tests.standins.slack import BOT_USER, SlackStandIn


async def test_turn_40_still_shows_the_model_turn_1(
    make_bot, slack: SlackStandIn, model: ChatModelStandIn
):
    await make_bot()
    root = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> my project is called Nimbus")
    await eventually(lambda: slack.bot_replies(CHANNEL, root.ts))
    for turn in range(2, 41):
        text = f"turn {turn}: " + "some ordinary question about the project, " * 4
        await slack.user_says(ASKER, CHANNEL, text, thread_ts=root.ts)
        await eventually(lambda n=turn: len(slack.bot_replies(CHANNEL, root.ts)) == n)
    seen = model.user_texts()
    assert len(seen) == 40
    assert seen[0] == "my project is called Nimbus"


async def test_context_budget_drops_the_oldest_turns_first(
    make_bot, slack: SlackStandIn, model: ChatModelStandIn
):
    await make_bot(CONTEXT_TOKENS="1000")
    root = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> first words")
    await eventually(lambda: slack.bot_replies(CHANNEL, root.ts))
    for turn in range(2, 12):
        await slack.user_says(ASKER, CHANNEL, f"turn {turn} " + "x" * 400, thread_ts=root.ts)
        await eventually(lambda n=turn: len(slack.bot_replies(CHANNEL, root.ts)) == n)
    seen = model.user_texts()
    assert "first words" not in seen
    assert seen[-1].startswith("turn 11 ")
    assert 1 < len(seen) < 11


async def _thread_keys(client: Redis, *patterns: str) -> list[str]:
    found = []
    for pattern in patterns:
        found += [k async for k in client.scan_iter(match=pattern)]
    return found


async def test_idle_conversations_expire_and_waiting_ones_do_not(
    make_bot, slack: SlackStandIn, model: ChatModelStandIn
):
    bot = await make_bot(CONVERSATION_TTL_DAYS="0.00004")  # about 3.5 seconds
    idle = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> remember pears")
    await eventually(lambda: slack.bot_replies(CHANNEL, idle.ts))
    waiting = await ask_expert(slack, "Is Friday a holiday?")
    [request] = request_messages(slack)
    await eventually(lambda: slack.bot_replies(CHANNEL, waiting.ts))

    client = Redis.from_url(bot.settings.redis_url, decode_responses=True)
    try:
        idle_patterns = (f"ckpt*{idle.ts}*", f"hitl:thread*{idle.ts}*", f"hitl:inbox*{idle.ts}*")
        assert await _thread_keys(client, *idle_patterns)
        await asyncio.sleep(5)
        assert await _thread_keys(client, *idle_patterns) == []  # forgotten, checkpoint and all
        # What is left of it is bookkeeping of single deliveries, which expires within a day.
        for key in await _thread_keys(client, f"*{idle.ts}*"):
            assert key.startswith(("hitl:seen:", "hitl:effect:"))
            assert 0 < await client.ttl(key) <= 86_400
        kept = await _thread_keys(client, f"ckpt*{waiting.ts}*", f"hitl:thread*{waiting.ts}*")
        assert {k.split(":")[0] for k in kept} >= {"ckpt", "ckpt-l", "hitl"}
        assert {k: await client.ttl(k) for k in kept} == dict.fromkeys(kept, -1)  # no expiry
        request_key = f"hitl:request:{request.blocks[-1]['elements'][0]['value']}"
        assert await client.ttl(request_key) == -1

        assert await answer(slack, EXPERTS[0], request, "Yes, it is.") is None
        await eventually(lambda: len(slack.bot_replies(CHANNEL, waiting.ts)) == 2)
        assert slack.bot_replies(CHANNEL, waiting.ts)[1] == "The expert says: Yes, it is."
        # Answered: the conversation is ordinary again, and will expire when idle.
        checkpoint = next(k for k in await _thread_keys(client, f"ckpt:*{waiting.ts}*"))
        assert 0 < await client.ttl(checkpoint) <= 4

        # The forgotten thread starts afresh.
        await slack.user_says(ASKER, CHANNEL, "what did I say first?", thread_ts=idle.ts)
        await asyncio.sleep(1)
        assert len(slack.bot_replies(CHANNEL, idle.ts)) == 1  # no longer a known thread
    finally:
        await client.aclose()
