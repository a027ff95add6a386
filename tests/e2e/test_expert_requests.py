"""The agent asks an expert; the expert answers through a button and a modal."""

from __future__ import annotations

import asyncio
import copy

from bot import ids
from tests.e2e.helpers import (
    ASKER,
    CHANNEL,
    answer,
    ask_expert,
    block_texts,
    has_buttons,
    open_modal,
    request_messages,
)
from tests.harness import EXPERT_CHANNEL, EXPERTS, eventually
from tests.standins.chat_model import ChatModelStandIn
from tests.standins.slack import BOT_USER, SlackStandIn

EXPERT, OTHER_EXPERT = EXPERTS


async def test_request_answer_resumes_the_graph_and_updates_the_request(
    bot, slack: SlackStandIn, model: ChatModelStandIn
):
    root = await ask_expert(slack, "What is our refund policy?")
    [request] = request_messages(slack)
    shown = block_texts(request)
    assert "What is our refund policy?" in shown
    assert f"<@{ASKER}>" in shown
    assert f"https://example.slack.com/archives/{CHANNEL}/p" in shown  # link to the thread
    assert has_buttons(request)
    await eventually(lambda: slack.bot_replies(CHANNEL, root.ts), what="note to the asker")
    assert "asked an expert" in slack.bot_replies(CHANNEL, root.ts)[0]

    view = await open_modal(slack, EXPERT, request)
    assert view["callback_id"] == ids.ANSWER_MODAL
    response = await slack.submit_view(EXPERT, view, "30 days, no questions asked.")
    assert response is None  # the modal closes

    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2, what="agent reply")
    assert slack.bot_replies(CHANNEL, root.ts)[1] == "The expert says: 30 days, no questions asked."
    await eventually(lambda: not has_buttons(request), what="request message updated")
    settled = block_texts(request)
    assert f"Answered by <@{EXPERT}>" in settled
    assert "30 days, no questions asked." in settled
    assert "<!date^" in settled  # when


async def test_blank_answer_is_refused_in_the_modal(bot, slack: SlackStandIn):
    root = await ask_expert(slack, "Is the API down?")
    [request] = request_messages(slack)
    view = await open_modal(slack, EXPERT, request)
    response = await slack.submit_view(EXPERT, view, "   \n ")
    assert response["response_action"] == "errors"
    assert ids.ANSWER_BLOCK in response["errors"]
    await asyncio.sleep(0.5)
    assert len(slack.bot_replies(CHANNEL, root.ts)) == 1  # only the "asked an expert" note
    assert has_buttons(request)

    response = await slack.submit_view(EXPERT, view, "No, it is up.")
    assert response is None
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2)


async def test_two_experts_answering_at_once_resume_once(
    bot, slack: SlackStandIn, model: ChatModelStandIn
):
    root = await ask_expert(slack, "Which region should we use?")
    [request] = request_messages(slack)
    first_view = await open_modal(slack, EXPERT, request)
    second_view = await open_modal(slack, OTHER_EXPERT, request)
    responses = await asyncio.gather(
        slack.submit_view(EXPERT, first_view, "eu-west-1"),
        slack.submit_view(OTHER_EXPERT, second_view, "us-east-1"),
    )
    accepted = [r for r in responses if r is None]
    refused = [r for r in responses if r is not None]
    assert len(accepted) == 1 and len(refused) == 1
    assert refused[0]["response_action"] == "update"
    refusal = str(refused[0]["view"])
    assert "already answered by <@" in refusal

    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2)
    await asyncio.sleep(0.5)
    replies = slack.bot_replies(CHANNEL, root.ts)
    assert len(replies) == 2
    winner = EXPERT if responses[0] is None else OTHER_EXPERT
    assert f"<@{winner}>" in refusal
    assert replies[1] == "The expert says: " + ("eu-west-1" if winner == EXPERT else "us-east-1")
    tool_turns = [r for r in model.requests if r["messages"][-1]["role"] == "tool"]
    assert len(tool_turns) == 1


async def test_click_on_answered_request_says_who_answered(bot, slack: SlackStandIn):
    root = await ask_expert(slack, "Can I expense a monitor?")
    [request] = request_messages(slack)
    # Keep the original, button-bearing message as a stale client would still show it.
    stale = copy.deepcopy(request)
    assert await answer(slack, EXPERT, request, "Yes, up to 300 EUR.") is None
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2)

    opened = len(slack.opened_views)
    await slack.click(OTHER_EXPERT, stale, ids.ANSWER_ACTION)
    await eventually(lambda: slack.ephemerals, what="ephemeral")
    assert slack.ephemerals[-1]["user"] == OTHER_EXPERT
    assert f"already answered by <@{EXPERT}>" in slack.ephemerals[-1]["text"]
    assert len(slack.opened_views) == opened


async def test_parallel_interrupts_each_get_a_request_and_resume_by_id(
    bot, slack: SlackStandIn, model: ChatModelStandIn
):
    root = await slack.user_says(
        ASKER, CHANNEL, f"<@{BOT_USER}> ask experts: Which database? | Which cloud?"
    )
    await eventually(lambda: len(request_messages(slack)) == 2, what="two requests")
    by_question = {
        ("database" if "database" in block_texts(m) else "cloud"): m
        for m in request_messages(slack)
    }
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2, what="two notes")

    assert await answer(slack, EXPERT, by_question["cloud"], "GCP") is None
    await eventually(lambda: not has_buttons(by_question["cloud"]), what="first request settled")
    await asyncio.sleep(0.3)
    assert len(slack.bot_replies(CHANNEL, root.ts)) == 2  # still waiting for the other
    assert has_buttons(by_question["database"])

    assert await answer(slack, OTHER_EXPERT, by_question["database"], "Postgres") is None
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 3, what="final reply")
    final = slack.bot_replies(CHANNEL, root.ts)[2]
    assert final.startswith("The expert says: ")
    assert "GCP" in final and "Postgres" in final


async def test_message_while_waiting_is_held_until_the_expert_answers(
    bot, slack: SlackStandIn, model: ChatModelStandIn
):
    root = await ask_expert(slack, "May I deploy on Friday?")
    [request] = request_messages(slack)
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 1)
    calls_before = len(model.requests)

    await slack.user_says(ASKER, CHANNEL, "any news?", thread_ts=root.ts)
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2, what="held note")
    assert "waiting for an expert" in slack.bot_replies(CHANNEL, root.ts)[1]
    assert len(model.requests) == calls_before  # the paused graph was not run

    assert await answer(slack, EXPERT, request, "Only before noon.") is None
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 4, what="both replies")
    replies = slack.bot_replies(CHANNEL, root.ts)
    assert replies[2] == "The expert says: Only before noon."
    assert replies[3] == "Echo: any news?"


async def test_decline_lets_the_agent_carry_on(bot, slack: SlackStandIn):
    root = await ask_expert(slack, "What is the CEO's phone number?")
    [request] = request_messages(slack)
    await slack.click(EXPERT, request, ids.DECLINE_ACTION)
    await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2, what="reply")
    assert "declined" in slack.bot_replies(CHANNEL, root.ts)[1]
    await eventually(lambda: not has_buttons(request))
    assert f"Declined by <@{EXPERT}>" in block_texts(request)


async def test_non_expert_cannot_answer(bot, slack: SlackStandIn):
    root = await ask_expert(slack, "Should we rotate the keys?")
    [request] = request_messages(slack)
    await slack.click("U0STRANGER", request, ids.ANSWER_ACTION)
    await eventually(lambda: slack.ephemerals, what="refusal")
    assert slack.ephemerals[-1]["user"] == "U0STRANGER"
    assert "Only experts" in slack.ephemerals[-1]["text"]
    assert slack.opened_views == []
    assert has_buttons(request)
    assert len(slack.bot_replies(CHANNEL, root.ts)) == 1
    assert slack.find(EXPERT_CHANNEL, request.ts) is request
