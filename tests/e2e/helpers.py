"""Steps the end-to-end tests share: what an asker and an expert do, and what they see."""

from __future__ import annotations

from typing import Any

from bot import ids
from tests.harness import EXPERT_CHANNEL, eventually
from tests.standins.slack import BOT_USER, Message, SlackStandIn

CHANNEL = "C0GENERAL"
ASKER = "U0ASKER"


def request_messages(slack: SlackStandIn) -> list[Message]:
    """Expert requests the bot has posted in the expert channel."""
    return [m for m in slack.channel_messages(EXPERT_CHANNEL) if m.bot_id]


def has_buttons(message: Message) -> bool:
    return any(b.get("type") == "actions" for b in message.blocks or [])


def block_texts(message: Message) -> str:
    parts = []
    for block in message.blocks or []:
        if isinstance(block.get("text"), dict):
            parts.append(block["text"]["text"])
        for element in block.get("elements") or []:
            if isinstance(element.get("text"), str):
                parts.append(element["text"])
    return "\n".join(parts)


async def ask_expert(slack: SlackStandIn, question: str, count: int = 1) -> Message:
    """An asker mentions the bot with something that needs an expert; returns the root."""
    root = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> ask an expert: {question}")
    await eventually(lambda: len(request_messages(slack)) >= count, what="expert request")
    return root


async def open_modal(slack: SlackStandIn, expert: str, request: Message) -> dict[str, Any]:
    before = len(slack.opened_views)
    await slack.click(expert, request, ids.ANSWER_ACTION)
    await eventually(lambda: len(slack.opened_views) > before, what="modal opened")
    return slack.opened_views[-1]


async def answer(slack: SlackStandIn, expert: str, request: Message, text: str) -> Any:
    view = await open_modal(slack, expert, request)
    return await slack.submit_view(expert, view, text)
