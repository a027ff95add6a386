"""Outside services failing: the model, Slack, Redis. Each fault is injected for real."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from bot import blocks, ids
from bot.redis_server import EmbeddedRedis
from bot.requests import RequestStore
from tests.e2e.helpers import (
    ASKER,
    CHANNEL,
    answer,
    ask_expert,
    open_modal,
    request_messages,
)
from tests.harness import EXPERT_CHANNEL, EXPERTS, eventually
from tests.standins.chat_model import ChatModelStandIn
from tests.standins.slack import BOT_USER, SlackStandIn

EXPERT = EXPERTS[0]


async def _mention(slack: SlackStandIn, text: str):
    return await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> {text}")


@pytest.mark.parametrize("status", [500, 503])
async def test_model_errors_are_retried_then_explained_and_the_thread_goes_on(
    status: int, make_bot, slack: SlackStandIn, model: ChatModelStandIn
):
    await make_bot(MODEL_MAX_RETRIES="2")
    model.fail(times=3, status=status)
    root = await _mention(slack, "are you there?")
    await eventually(lambda: slack.bot_replies(CHANNEL, root.ts), what="error note")
    assert slack.bot_replies(CHANNEL, root.ts) == [blocks.MODEL_FAILED_NOTE]
    assert len(model.requests) == 3  # the first try and two retries

    await slack.user_says(ASKER, CHANNEL, "and now?", thread_ts=root.ts)
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2)
    assert slack.bot_replies(CHANNEL, root.ts)[1] == "Echo: and now?"
    # The failed turn left a consistent history: the model sees both messages, in order.
    assert model.user_texts()[-2:] == ["are you there?", "and now?"]


async def test_model_429_is_retried_after_its_retry_after(
    make_bot, slack: SlackStandIn, model: ChatModelStandIn
):
    await make_bot()
    model.fail(times=1, status=429, retry_after=1)
    started = time.monotonic()
    root = await _mention(slack, "busy?")
    await eventually(lambda: slack.bot_replies(CHANNEL, root.ts))
    assert slack.bot_replies(CHANNEL, root.ts) == ["Echo: busy?"]
    assert time.monotonic() - started >= 1.0
    assert len(model.requests) == 2


async def test_hanging_model_times_out_with_a_bounded_total(
    make_bot, slack: SlackStandIn, model: ChatModelStandIn
):
    await make_bot(MODEL_TIMEOUT_SECONDS="0.5", MODEL_MAX_RETRIES="1", TURN_TIMEOUT_SECONDS="4")
    model.fail(times=2, hang_seconds=30)
    started = time.monotonic()
    root = await _mention(slack, "hello?")
    await eventually(lambda: slack.bot_replies(CHANNEL, root.ts), timeout=15)
    assert slack.bot_replies(CHANNEL, root.ts) == [blocks.MODEL_FAILED_NOTE]
    assert time.monotonic() - started < 8
    await slack.user_says(ASKER, CHANNEL, "again", thread_ts=root.ts)
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2, timeout=15)
    assert slack.bot_replies(CHANNEL, root.ts)[1] == "Echo: again"


async def test_slack_429_is_waited_out_and_retried(make_bot, slack: SlackStandIn):
    await make_bot()
    slack.fail("chat.postMessage", times=1, status=429, retry_after=1, channel=CHANNEL)
    root = await _mention(slack, "slowly")
    await eventually(lambda: slack.bot_replies(CHANNEL, root.ts), timeout=15)
    assert slack.bot_replies(CHANNEL, root.ts) == ["Echo: slowly"]
    posts = [a for a in slack.calls_to("chat.postMessage") if a.get("channel") == CHANNEL]
    assert len(posts) == 2  # the refused one and the retry


async def test_failed_expert_request_post_is_retried_not_dropped(
    make_bot, slack: SlackStandIn, caplog: pytest.LogCaptureFixture
):
    await make_bot(LEASE_SECONDS="1")
    slack.fail("chat.postMessage", times=2, error="internal_error", channel=EXPERT_CHANNEL)
    with caplog.at_level(logging.ERROR, logger="bot.conversations"):
        root = await ask_expert(slack, "Who approves budgets?")
    [request] = request_messages(slack)
    await eventually(lambda: slack.bot_replies(CHANNEL, root.ts))
    logged = [r.getMessage() for r in caplog.records]
    failures = [m for m in logged if "Posting expert request" in m]
    assert len(failures) == 2
    assert all(f"T0TEAM:{CHANNEL}:{root.ts}" in f and "internal_error" in f for f in failures)
    assert await answer(slack, EXPERT, request, "The CFO.") is None
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2)
    assert len(request_messages(slack)) == 1


@pytest.mark.parametrize("mode", ["http", "socket"])
async def test_redis_outage_loses_nothing_and_heals_itself(
    mode: str, make_bot, slack: SlackStandIn, model: ChatModelStandIn, tmp_path: Path
):
    server = EmbeddedRedis(tmp_path / "outage")
    server.start()
    try:
        bot = await make_bot(mode, redis=server.url)
        root = await ask_expert(slack, "Can I merge on Friday?")
        [request] = request_messages(slack)
        view = await open_modal(slack, EXPERT, request)
        waiting = await _mention(slack, "written just before the outage")
        await eventually(lambda: slack.bot_replies(CHANNEL, waiting.ts))

        server.stop()  # Redis goes away
        health = f"http://127.0.0.1:{bot.port}/health"
        async with aiohttp.ClientSession() as session, session.get(health) as response:
            assert response.status == 503
            assert (await response.json())["redis"] == "unreachable"
        # Slack's delivery is not acknowledged, so Slack will deliver it again.
        during = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> during", as_events=())
        event = slack.message_event(during, "app_mention", "channel")
        assert await slack.deliver_event(event) == (503 if mode == "http" else 0)
        # The expert's answer is refused inside the modal, their text still there.
        response = await slack.submit_view(EXPERT, view, "Yes, before noon.")
        assert response["response_action"] == "errors"

        server.start()  # Redis is back, with its data
        await eventually(lambda: _healthy(health), timeout=20, what="healthy again")
        assert await slack.deliver_event(event, retry_num=1) == 200
        await eventually(lambda: slack.bot_replies(CHANNEL, during.ts), timeout=20)
        assert slack.bot_replies(CHANNEL, during.ts) == ["Echo: during"]
        assert await slack.submit_view(EXPERT, view, "Yes, before noon.") is None
        await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2, timeout=20)
        assert slack.bot_replies(CHANNEL, root.ts)[1] == "The expert says: Yes, before noon."
    finally:
        server.stop()


async def _healthy(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def test_membership_check_failure_refuses_the_answer(make_bot, slack: SlackStandIn):
    await make_bot()
    root = await ask_expert(slack, "Is this safe?")
    [request] = request_messages(slack)
    slack.fail("conversations.members", times=10, error="internal_error")
    await slack.click(EXPERT, request, ids.ANSWER_ACTION)
    await eventually(lambda: slack.ephemerals, what="refusal")
    assert "couldn't check" in slack.ephemerals[-1]["text"]
    assert slack.opened_views == []
    await asyncio.sleep(0.3)
    assert len(slack.bot_replies(CHANNEL, root.ts)) == 1


async def test_expert_users_and_usergroup_settings(make_bot, slack: SlackStandIn):
    slack.usergroups["S0EXPERTS"] = {"U0GROUPIE"}
    await make_bot(EXPERT_USERS="U0LISTED", EXPERT_USERGROUP="S0EXPERTS")
    await ask_expert(slack, "Q1")
    [request] = request_messages(slack)
    await slack.click(EXPERT, request, ids.ANSWER_ACTION)  # in the channel, but not listed
    await eventually(lambda: slack.ephemerals)
    assert "Only experts" in slack.ephemerals[-1]["text"]
    await open_modal(slack, "U0LISTED", request)
    await open_modal(slack, "U0GROUPIE", request)
    assert len(slack.opened_views) == 2


async def test_forged_ids_are_looked_up_and_refused(make_bot, slack: SlackStandIn):
    await make_bot()
    root = await ask_expert(slack, "Real question")
    [request] = request_messages(slack)
    view = await open_modal(slack, EXPERT, request)
    forged = dict(view, private_metadata="not-a-real-request-id")
    response = await slack.submit_view(EXPERT, forged, "sneaky")
    assert response["response_action"] == "update"
    assert "no longer exists" in str(response["view"])
    tampered = copy.deepcopy(request)
    tampered.blocks = [
        {**b, "elements": [{**e, "value": "../../etc"} for e in b["elements"]]}
        if b["type"] == "actions"
        else b
        for b in request.blocks or []
    ]
    await slack.click(EXPERT, tampered, ids.ANSWER_ACTION)
    await eventually(lambda: slack.ephemerals)
    assert "no longer exists" in slack.ephemerals[-1]["text"]
    await asyncio.sleep(0.3)
    assert len(slack.bot_replies(CHANNEL, root.ts)) == 1


async def test_retried_submission_and_replayed_click_resume_once(
    make_bot, slack: SlackStandIn, model: ChatModelStandIn
):
    await make_bot()
    root = await ask_expert(slack, "Once?")
    [request] = request_messages(slack)
    stale = copy.deepcopy(request)  # the message as a slow client still shows it
    view = await open_modal(slack, EXPERT, request)
    assert await slack.submit_view(EXPERT, view, "Only once.") is None
    assert await slack.submit_view(EXPERT, view, "Only once.") is None  # Slack retried it
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2)
    await slack.click(EXPERT, stale, ids.ANSWER_ACTION)
    await slack.click(EXPERT, stale, ids.DECLINE_ACTION)
    await asyncio.sleep(0.5)
    assert len(slack.opened_views) == 1
    assert len(slack.bot_replies(CHANNEL, root.ts)) == 2
    assert len([r for r in model.requests if r["messages"][-1]["role"] == "tool"]) == 1


async def test_hostile_text_cannot_ping_or_forge_links_in_the_expert_channel(
    make_bot, slack: SlackStandIn
):
    await make_bot()
    hostile = (
        "<!channel> <!here> @everyone <!subteam^S0ALL|@all> <https://evil.example|your bank> "
        "*urgent* _now_"
    )
    await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> ask an expert: {hostile}")
    await eventually(lambda: request_messages(slack))
    [request] = request_messages(slack)
    post = next(a for a in slack.calls_to("chat.postMessage") if a["channel"] == EXPERT_CHANNEL)
    rendered = [post["text"]] + [
        b["text"]["text"] for b in post["blocks"] if b.get("text", {}).get("type") == "mrkdwn"
    ]
    for text in rendered:
        for live in ("<!channel>", "<!here>", "<!subteam", "<https://evil", "@everyone"):
            assert live not in text
    question_block = request.blocks[1]["text"]
    assert question_block["type"] == "plain_text"  # shown literally, never interpreted


async def test_oversized_question_is_truncated_on_screen_and_kept_whole(
    make_bot, slack: SlackStandIn, model: ChatModelStandIn
):
    bot = await make_bot()
    long_question = "Please review: " + "lorem ipsum " * 600
    root = await ask_expert(slack, long_question.strip())
    [request] = request_messages(slack)
    shown = request.blocks[1]["text"]["text"]
    assert len(shown) <= 3_000 and "truncated" in shown
    client = Redis.from_url(bot.settings.redis_url, decode_responses=True)
    request_id = next(b for b in request.blocks if b["type"] == "actions")["elements"][0]["value"]
    stored = await RequestStore(client).get(request_id)
    await client.aclose()
    assert stored.question == long_question.strip()
    long_answer = "step " * 599 + "done"
    assert await answer(slack, EXPERT, request, long_answer) is None
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2)
    tool_results = [m["content"] for m in model.requests[-1]["messages"] if m["role"] == "tool"]
    assert tool_results == [long_answer]
