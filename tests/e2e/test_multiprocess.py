"""Several `python -m bot` processes on one Redis: sharing work, crashes, SIGTERM."""

from __future__ import annotations

import asyncio

from tests.e2e.helpers import ASKER, CHANNEL, answer, ask_expert, request_messages
from tests.harness import EXPERTS, eventually
from tests.standins.chat_model import ChatModelStandIn
from tests.standins.slack import BOT_USER, SlackStandIn


async def _one_reply_eventually(slack: SlackStandIn, root_ts: str, timeout: float = 30) -> str:
    await eventually(lambda: slack.bot_replies(CHANNEL, root_ts), timeout=timeout)
    await asyncio.sleep(1.0)  # time for a duplicate to show up, if there were one
    replies = slack.bot_replies(CHANNEL, root_ts)
    assert len(replies) == 1, replies
    return replies[0]


async def test_turn_cut_by_kill_9_is_finished_by_another_process(
    spawn_bot, slack: SlackStandIn, model: ChatModelStandIn
):
    first = await spawn_bot("http")
    await spawn_bot("http")  # the survivor; Slack keeps sending to the first's URL
    model.fail(times=1, hang_seconds=120)
    root = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> survive this")
    await eventually(lambda: model.in_flight == 1, what="model call in flight")
    first.kill()
    assert await _one_reply_eventually(slack, root.ts) == "Echo: survive this"


async def test_turn_cut_by_kill_9_is_finished_after_restart(
    spawn_bot, slack: SlackStandIn, model: ChatModelStandIn
):
    first = await spawn_bot("socket")
    model.fail(times=1, hang_seconds=120)
    root = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> come back")
    await eventually(lambda: model.in_flight == 1, what="model call in flight")
    first.kill()
    await spawn_bot("socket")
    assert await _one_reply_eventually(slack, root.ts) == "Echo: come back"


async def test_request_asked_through_one_process_is_answered_through_another(
    spawn_bot, slack: SlackStandIn
):
    await spawn_bot("socket")
    await spawn_bot("socket")
    # Slack spreads payloads over the connections: the stand-in takes turns.
    root = await ask_expert(slack, "Which office is open on Monday?")
    [request] = request_messages(slack)
    assert await answer(slack, EXPERTS[0], request, "Berlin.") is None
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2, timeout=20)
    assert slack.bot_replies(CHANNEL, root.ts)[1] == "The expert says: Berlin."


async def test_same_event_delivered_to_two_processes_is_answered_once(
    spawn_bot, slack: SlackStandIn, model: ChatModelStandIn
):
    await spawn_bot("socket")
    await spawn_bot("socket")
    message = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> just once", as_events=())
    body = slack.message_event(message, "app_mention", "channel")
    await asyncio.gather(
        slack.socket_send("events_api", body, connection=0),
        slack.socket_send("events_api", body, connection=1, retry_attempt=1),
    )
    assert await _one_reply_eventually(slack, message.ts) == "Echo: just once"
    assert len(model.requests) == 1


async def test_sigterm_hands_a_long_turn_to_another_process_within_10_s(
    spawn_bot, slack: SlackStandIn, model: ChatModelStandIn
):
    first = await spawn_bot("http", LEASE_SECONDS="30")
    await spawn_bot("http", LEASE_SECONDS="30")
    model.fail(times=1, hang_seconds=120)
    root = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> hand me over")
    await eventually(lambda: model.in_flight == 1, what="model call in flight")
    assert await first.terminate() < 10
    # Handed back at once, not after the 30 s lease.
    assert await _one_reply_eventually(slack, root.ts, timeout=8) == "Echo: hand me over"


async def test_sigterm_lets_a_short_turn_finish(
    spawn_bot, slack: SlackStandIn, model: ChatModelStandIn
):
    first = await spawn_bot("http")
    model.latency = 2.0
    root = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> finish me")
    await eventually(lambda: model.in_flight == 1, what="model call in flight")
    assert await first.terminate() < 10
    assert slack.bot_replies(CHANNEL, root.ts) == ["Echo: finish me"]
    assert "Stopped" in first.log()


async def test_kill_9_between_a_post_and_its_record_does_not_post_twice(
    spawn_bot, slack: SlackStandIn
):
    first = await spawn_bot("http")
    slack.stalls["chat.postMessage"] = 60  # the reply is posted, its answer never arrives
    root = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> post me once")
    await eventually(lambda: slack.bot_replies(CHANNEL, root.ts), what="reply posted")
    first.kill()
    slack.bot_url = (await spawn_bot("http")).events_url
    # The new process re-runs the job, finds the reply by its metadata, and moves on.
    await eventually(lambda: slack.calls_to("conversations.replies"), timeout=20)
    assert await _one_reply_eventually(slack, root.ts) == "Echo: post me once"
    second = await slack.user_says(ASKER, CHANNEL, "next", thread_ts=root.ts)
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2, timeout=20)
    assert slack.bot_replies(CHANNEL, root.ts)[1] == "Echo: next"
    assert second.ts
