"""Block Kit builders: pure functions from values to Slack payloads.

Text that comes from users or the model is shown as plain_text (never parsed for mentions,
links or formatting) and cut to Slack's limits with a marker; full texts stay in Redis.
"""

from __future__ import annotations

import re
from typing import Any

from bot import ids
from bot.formatting import SECTION_TEXT_LIMIT, neutralize, truncate
from bot.requests import ExpertRequest, Status

Blocks = list[dict[str, Any]]
MODAL_QUESTION_LIMIT = 2_900
ANSWER_MAX_LENGTH = 3_000  # Slack's own ceiling for a plain-text input

_SLACK_ID = re.compile(r"^[A-Z0-9]{2,}$")


def _user(user_id: str) -> str:
    return f"<@{user_id}>" if _SLACK_ID.match(user_id or "") else "someone"


def _channel(channel_id: str) -> str:
    return f"<#{channel_id}>" if _SLACK_ID.match(channel_id or "") else "a conversation"


def _date(epoch: float | None) -> str:
    if not epoch:
        return "just now"
    return f"<!date^{int(epoch)}^{{date_short_pretty}} at {{time}}|{int(epoch)}>"


def _plain_section(text: str, limit: int = SECTION_TEXT_LIMIT) -> dict[str, Any]:
    return {
        "type": "section",
        "text": {"type": "plain_text", "text": truncate(text or " ", limit), "emoji": False},
    }


def _origin_context(request: ExpertRequest, thread_link: str | None) -> dict[str, Any]:
    where = _channel(request.channel)
    if thread_link and thread_link.startswith("https://"):
        where = f"<{thread_link}|the thread in {where}>"
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": f"Asked by {_user(request.asker)} in {where}"}],
    }


def expert_request_message(request: ExpertRequest, thread_link: str | None) -> tuple[str, Blocks]:
    """The request posted to the expert channel: question, asker, link, Answer button."""
    text = f"An expert is needed: {neutralize(truncate(request.question, 200))}"
    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "An expert is needed"}},
        _plain_section(request.question),
        _origin_context(request, thread_link),
        {
            "type": "actions",
            "block_id": "request_actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": ids.ANSWER_ACTION,
                    "text": {"type": "plain_text", "text": "Answer"},
                    "style": "primary",
                    "value": request.id,
                },
                {
                    "type": "button",
                    "action_id": ids.DECLINE_ACTION,
                    "text": {"type": "plain_text", "text": "Decline"},
                    "value": request.id,
                    "confirm": {
                        "title": {"type": "plain_text", "text": "Decline this request?"},
                        "text": {
                            "type": "plain_text",
                            "text": "The assistant will carry on without an expert's answer.",
                        },
                        "confirm": {"type": "plain_text", "text": "Decline"},
                        "deny": {"type": "plain_text", "text": "Keep it"},
                    },
                },
            ],
        },
    ]
    return text, blocks


def answered_request_message(request: ExpertRequest, thread_link: str | None) -> tuple[str, Blocks]:
    """The request message once settled: who answered, when, the answer; no buttons."""
    declined = request.status is Status.DECLINED
    verb = "Declined" if declined else "Answered"
    text = f"{verb} by {_user(request.answered_by)}: {neutralize(truncate(request.question, 200))}"
    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{verb} by an expert"}},
        _plain_section(request.question),
        _origin_context(request, thread_link),
    ]
    if not declined:
        blocks.append(_plain_section(request.answer))
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"{verb} by {_user(request.answered_by)} {_date(request.answered_at)}",
                }
            ],
        }
    )
    return text, blocks


def answer_modal(request: ExpertRequest) -> dict[str, Any]:
    """The modal the Answer button opens: the question and a multi-line answer field."""
    return {
        "type": "modal",
        "callback_id": ids.ANSWER_MODAL,
        "private_metadata": request.id,
        "title": {"type": "plain_text", "text": "Answer the request"},
        "submit": {"type": "plain_text", "text": "Send answer"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _plain_section(request.question, MODAL_QUESTION_LIMIT),
            {
                "type": "input",
                "block_id": ids.ANSWER_BLOCK,
                "label": {"type": "plain_text", "text": "Your answer"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.ANSWER_INPUT,
                    "multiline": True,
                    "max_length": ANSWER_MAX_LENGTH,
                },
            },
        ],
    }


def answer_errors(message: str) -> dict[str, Any]:
    """A modal response that shows `message` under the answer field."""
    return {"response_action": "errors", "errors": {ids.ANSWER_BLOCK: message}}


def answer_not_taken_view(reason_mrkdwn: str, attempted_answer: str) -> dict[str, Any]:
    """Replaces the modal when an answer cannot be taken, and gives the expert's text back."""
    blocks: Blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": reason_mrkdwn}}]
    if attempted_answer.strip():
        blocks += [
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "Your answer, not sent:"}]},
            _plain_section(attempted_answer),
        ]
    return {
        "response_action": "update",
        "view": {
            "type": "modal",
            "title": {"type": "plain_text", "text": "Answer not sent"},
            "close": {"type": "plain_text", "text": "Close"},
            "blocks": blocks,
        },
    }


def settled_explanation(status: str, by: str, at: float | None) -> str:
    """Why a request cannot be answered any more, in mrkdwn."""
    if status == Status.DECLINED:
        return f"This request was declined by {_user(by)} {_date(at)}."
    if status == Status.ANSWERED:
        return f"This request was already answered by {_user(by)} {_date(at)}."
    return "This request no longer exists."


def asked_expert_note(question: str) -> str:
    quoted = "\n".join("> " + line for line in neutralize(truncate(question, 2_000)).split("\n"))
    return f":raising_hand: I've asked an expert:\n{quoted}\nI'll continue here once they answer."


HELD_MESSAGE_NOTE = (
    ":hourglass: This thread is waiting for an expert's answer. I've kept your message and "
    "will read it as soon as the expert replies."
)

MODEL_FAILED_NOTE = (
    ":warning: Sorry, I couldn't reach the language model just now, so I can't answer that "
    "message. Please try again in a moment."
)

TURN_FAILED_NOTE = (
    ":warning: Sorry, something went wrong while I was answering that message. Please try again."
)


def home_view(*, expert_channel: str, pending_requests: int, is_expert: bool) -> dict[str, Any]:
    """The App Home tab."""
    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Ask the assistant"}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "Mention me in a channel, reply in my threads, or send me a direct "
                "message. When a question needs a person, I ask an expert in "
                f"{_channel(expert_channel)} and continue in your thread once they answer.",
            },
        },
    ]
    if is_expert:
        waiting = "No requests are" if pending_requests == 0 else f"*{pending_requests}*"
        plural = "request is" if pending_requests == 1 else "requests are"
        line = (
            f"{waiting} waiting in {_channel(expert_channel)}."
            if pending_requests == 0
            else f"{waiting} {plural} waiting for an expert in {_channel(expert_channel)}."
        )
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": line}})
    return {"type": "home", "blocks": blocks}
