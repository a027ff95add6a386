"""Block Kit builders: what experts and askers see, within Slack's limits, safe from
whatever text users or the model put in."""

from __future__ import annotations

import json

from bot import blocks, ids
from bot.requests import ExpertRequest, Status


def _request(**changes) -> ExpertRequest:
    values = dict(
        id="req-abc",
        team="T1",
        thread_id="T1:C1:1.0",
        channel="C1",
        root="1.0",
        interrupt_id="i1",
        question="What is the refund policy?",
        asker="U0ASKER",
        asker_ts="1.0",
        created_at=1_700_000_000.0,
        status=Status.PENDING,
    )
    values.update(changes)
    return ExpertRequest(**values)


def _actions(message_blocks):
    return [b for b in message_blocks if b["type"] == "actions"]


def test_request_message_shows_question_asker_link_and_buttons():
    text, message = blocks.expert_request_message(_request(), "https://x.slack.com/archives/C1/p1")
    assert "refund policy" in text
    assert message[1]["text"] == {
        "type": "plain_text",
        "text": "What is the refund policy?",
        "emoji": False,
    }
    context = message[2]["elements"][0]["text"]
    assert "<@U0ASKER>" in context and "<https://x.slack.com/archives/C1/p1|" in context
    [actions] = _actions(message)
    assert [e["action_id"] for e in actions["elements"]] == [ids.ANSWER_ACTION, ids.DECLINE_ACTION]
    assert all(e["value"] == "req-abc" for e in actions["elements"])  # only the opaque id


def test_request_message_cannot_ping_or_forge_links():
    hostile = "<!channel> @here <!subteam^S123> <https://evil.example|bank> *urgent*"
    text, message = blocks.expert_request_message(_request(question=hostile), None)
    shown = message[1]["text"]
    assert shown["type"] == "plain_text"  # Slack never parses plain_text for mentions or links
    assert "<!channel>" not in text and "<https://evil" not in text and "@here" not in text
    assert "&lt;!channel&gt;" in text


def test_long_question_is_truncated_with_a_marker():
    question = "x" * 10_000
    _, message = blocks.expert_request_message(_request(question=question), None)
    shown = message[1]["text"]["text"]
    assert len(shown) <= 3_000 and "truncated" in shown
    modal = blocks.answer_modal(_request(question=question))
    assert len(modal["blocks"][0]["text"]["text"]) <= 3_000
    assert len(json.dumps(modal)) < 10_000


def test_answered_message_has_who_when_answer_and_no_buttons():
    request = _request(
        status=Status.ANSWERED,
        answer="30 days",
        answered_by="U0EXPERT",
        answered_at=1_700_000_100.0,
    )
    text, message = blocks.answered_request_message(request, None)
    assert _actions(message) == []
    joined = json.dumps(message)
    assert "30 days" in joined and "<@U0EXPERT>" in joined and "<!date^1700000100^" in joined
    assert "Answered" in text


def test_declined_message_says_so():
    request = _request(status=Status.DECLINED, answered_by="U0EXPERT", answered_at=1.0)
    _, message = blocks.answered_request_message(request, None)
    assert "Declined by <@U0EXPERT>" in json.dumps(message)
    assert _actions(message) == []


def test_answer_modal_carries_only_the_request_id():
    modal = blocks.answer_modal(_request())
    assert modal["private_metadata"] == "req-abc"
    assert modal["callback_id"] == ids.ANSWER_MODAL
    [field] = [b for b in modal["blocks"] if b["type"] == "input"]
    assert field["block_id"] == ids.ANSWER_BLOCK
    assert field["element"]["multiline"] is True
    assert field["element"]["action_id"] == ids.ANSWER_INPUT
    assert len(modal["title"]["text"]) <= 24


def test_not_taken_view_gives_the_answer_back():
    view = blocks.answer_not_taken_view("already answered", "my careful answer")
    assert view["response_action"] == "update"
    assert "my careful answer" in json.dumps(view)


def test_settled_explanations():
    assert "already answered by <@U1>" in blocks.settled_explanation("answered", "U1", 5.0)
    assert "declined by <@U1>" in blocks.settled_explanation("declined", "U1", 5.0)
    assert "no longer exists" in blocks.settled_explanation("missing", "", None)


def test_asked_note_quotes_question_safely():
    note = blocks.asked_expert_note("<!here> what now?")
    assert "&lt;!here&gt;" in note and "<!here>" not in note


def test_home_view_counts_pending_requests_for_experts():
    view = blocks.home_view(expert_channel="C9", pending_requests=3, is_expert=True)
    assert "*3*" in json.dumps(view)
    view = blocks.home_view(expert_channel="C9", pending_requests=3, is_expert=False)
    assert "*3*" not in json.dumps(view)
