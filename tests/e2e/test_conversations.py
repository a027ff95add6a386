"""Askers talk to the agent: mentions, thread replies, DMs, memory."""

from __future__ import annotations

from tests.harness import eventually
from tests.standins.chat_model import ChatModelStandIn
from tests.standins.slack import BOT_USER, SlackStandIn

CHANNEL = "C0GENERAL"
ASKER = "U0ASKER"


async def test_mention_is_answered_in_its_thread_and_replies_continue(
    bot, slack: SlackStandIn, model: ChatModelStandIn
):
    root = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> hello there")
    await eventually(lambda: slack.bot_replies(CHANNEL, root.ts), what="first reply")
    assert slack.bot_replies(CHANNEL, root.ts) == ["Echo: hello there"]

    await slack.user_says(ASKER, CHANNEL, "and again", thread_ts=root.ts)
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2, what="second reply")
    assert slack.bot_replies(CHANNEL, root.ts)[1] == "Echo: and again"
