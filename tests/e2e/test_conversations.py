"""Askers talk to the agent: mentions, thread replies, DMs, memory, formatting."""

from __future__ import annotations

import asyncio

from bot import ids
from tests.e2e.helpers import ASKER, CHANNEL
from tests.harness import eventually
from tests.standins.chat_model import ChatModelStandIn
from tests.standins.slack import BOT_ID, BOT_USER, SlackStandIn


async def test_mention_is_answered_in_its_thread_and_replies_continue(
    bot, slack: SlackStandIn, model: ChatModelStandIn
):
    root = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> hello there")
    await eventually(lambda: slack.bot_replies(CHANNEL, root.ts), what="first reply")
    await slack.user_says(ASKER, CHANNEL, "and again", thread_ts=root.ts)
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2, what="second reply")
    await asyncio.sleep(0.3)
    # The mention came as app_mention and as message: answered once.
    assert slack.bot_replies(CHANNEL, root.ts) == ["Echo: hello there", "Echo: and again"]
    assert len(model.requests) == 2


async def test_direct_messages_are_conversations(bot, slack: SlackStandIn):
    dm = "D0DIRECT"
    first = await slack.user_says(ASKER, dm, "hi bot", channel_type="im")
    await eventually(lambda: slack.bot_replies(dm, first.ts), what="DM reply")
    assert slack.bot_replies(dm, first.ts) == ["Echo: hi bot"]
    await slack.user_says(ASKER, dm, "what did I say first?", thread_ts=first.ts, channel_type="im")
    await eventually(lambda: len(slack.bot_replies(dm, first.ts)) == 2)
    assert slack.bot_replies(dm, first.ts)[1] == "You first said: hi bot"


async def test_thread_remembers_earlier_turns(bot, slack: SlackStandIn, model: ChatModelStandIn):
    root = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> my name is Ada")
    await eventually(lambda: slack.bot_replies(CHANNEL, root.ts))
    await slack.user_says("U0COLLEAGUE", CHANNEL, "nice", thread_ts=root.ts)
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2)
    await slack.user_says(ASKER, CHANNEL, "what did I say first?", thread_ts=root.ts)
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 3)
    assert slack.bot_replies(CHANNEL, root.ts)[2] == "You first said: my name is Ada"
    assert model.user_texts() == ["my name is Ada", "nice", "what did I say first?"]
    # Each speaker is told apart for the model.
    names = [m.get("name") for m in model.requests[-1]["messages"] if m["role"] == "user"]
    assert names == [ASKER, "U0COLLEAGUE", ASKER]


async def test_separate_threads_do_not_share_memory(bot, slack: SlackStandIn):
    one = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> apples")
    two = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> pears")
    await eventually(
        lambda: slack.bot_replies(CHANNEL, one.ts) and slack.bot_replies(CHANNEL, two.ts)
    )
    await slack.user_says(ASKER, CHANNEL, "what did I say first?", thread_ts=two.ts)
    await eventually(lambda: len(slack.bot_replies(CHANNEL, two.ts)) == 2)
    assert slack.bot_replies(CHANNEL, two.ts)[1] == "You first said: pears"


async def test_messages_not_for_the_bot_are_ignored(
    bot, slack: SlackStandIn, model: ChatModelStandIn
):
    await slack.user_says(ASKER, CHANNEL, "just chatting, no mention")
    stranger_root = await slack.user_says(ASKER, CHANNEL, "a thread the bot is not in")
    await slack.user_says(ASKER, CHANNEL, "a reply there", thread_ts=stranger_root.ts)
    # Another bot, and an edit: not conversations.
    other_bot = slack.message_event(stranger_root, "message", "channel")
    other_bot["event"] |= {"bot_id": "B0OTHER", "subtype": "bot_message", "ts": slack.next_ts()}
    await slack.deliver_event(other_bot)
    edited = slack.message_event(stranger_root, "message", "channel")
    edited["event"] |= {"subtype": "message_changed", "ts": slack.next_ts()}
    await slack.deliver_event(edited)
    # The bot's own message, as Slack echoes it back.
    own = slack.message_event(stranger_root, "message", "channel")
    own["event"] |= {"user": BOT_USER, "bot_id": BOT_ID, "ts": slack.next_ts()}
    await slack.deliver_event(own)
    await asyncio.sleep(0.6)
    assert model.requests == []
    assert slack.calls_to("chat.postMessage") == []


async def test_retried_event_is_answered_once(bot, slack: SlackStandIn, model):
    message = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> once please", as_events=())
    body = slack.message_event(message, "app_mention", "channel")
    assert await slack.deliver_event(body) == 200
    assert await slack.deliver_event(body, retry_num=1) == 200
    assert await slack.deliver_event(body, retry_num=2) == 200
    await eventually(lambda: slack.bot_replies(CHANNEL, message.ts))
    await asyncio.sleep(0.5)
    assert slack.bot_replies(CHANNEL, message.ts) == ["Echo: once please"]
    assert len(model.requests) == 1


async def test_asker_sees_the_bot_working_on_a_slow_turn(
    bot, slack: SlackStandIn, model: ChatModelStandIn
):
    model.latency = 2.0
    root = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> take your time")
    await eventually(lambda: ids.WORKING_REACTION in root.reactions, what="working reaction")
    assert slack.bot_replies(CHANNEL, root.ts) == []
    await eventually(lambda: slack.bot_replies(CHANNEL, root.ts))
    await eventually(lambda: ids.WORKING_REACTION not in root.reactions, what="reaction removed")


async def test_long_answers_are_split_not_cut(bot, slack: SlackStandIn):
    root = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> write 9000 characters")
    await eventually(lambda: any("THE END." in r for r in slack.bot_replies(CHANNEL, root.ts)))
    replies = slack.bot_replies(CHANNEL, root.ts)
    assert len(replies) >= 3
    assert all(len(r) <= 3_900 for r in replies)
    joined = "\n\n".join(replies)
    last_paragraph = max(
        int(p.split(".")[0].split()[1]) for p in joined.split("\n\n") if p.startswith("Paragraph")
    )
    assert all(f"Paragraph {n}." in joined for n in range(1, last_paragraph + 1))
    assert replies[-1].endswith("THE END.")


async def test_markdown_reaches_slack_as_mrkdwn(bot, slack: SlackStandIn):
    root = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> show markdown")
    await eventually(lambda: slack.bot_replies(CHANNEL, root.ts))
    [reply] = slack.bot_replies(CHANNEL, root.ts)
    assert "*Summary*" in reply and "#" not in reply
    assert "*important*" in reply and "**" not in reply
    assert "_subtle_" in reply
    assert "<https://example.com/docs|the docs>" in reply
    assert "• first point" in reply
    assert "~old~" in reply


async def test_app_home_explains_the_bot_and_counts_requests_for_experts(bot, slack: SlackStandIn):
    await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> ask an expert: anything?")
    await eventually(lambda: slack.channel_messages("C0EXPERTS"), what="request")
    for user in (ASKER, "U0EXPERT1"):
        event = {
            "type": "app_home_opened",
            "user": user,
            "channel": "D0HOME",
            "tab": "home",
            "event_ts": slack.next_ts(),
        }
        assert await slack.deliver_event(slack.event_callback(event)) == 200
    await eventually(lambda: len(slack.published_views) == 2, what="home views")
    by_user = {v["user_id"]: str(v["view"]) for v in slack.published_views}
    assert "Mention me" in by_user[ASKER] and "waiting" not in by_user[ASKER]
    assert "*1* request is waiting" in by_user["U0EXPERT1"]
