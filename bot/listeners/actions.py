"""Button listeners on expert request messages."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck

from bot.answers import Click
from bot.payload import text_at
from bot.services import Services


def click_from_body(body: dict[str, Any]) -> Click | None:
    actions = body.get("actions")
    action = actions[0] if isinstance(actions, list) and actions else None
    team = text_at(body, "team", "id") or text_at(body, "user", "team_id")
    user = text_at(body, "user", "id")
    channel = text_at(body, "channel", "id") or text_at(body, "container", "channel_id")
    request_id = text_at(action, "value")
    if not (team and user and channel and request_id):
        return None
    return Click(
        team=team,
        user=user,
        request_id=request_id,
        channel=channel,
        trigger_id=text_at(body, "trigger_id") or "",
    )


async def handle_answer_click(services: Services, ack: AsyncAck, body: dict[str, Any]) -> None:
    await ack()
    click = click_from_body(body)
    if click is not None:
        await services.answers.open_answer_modal(click)


async def handle_decline_click(services: Services, ack: AsyncAck, body: dict[str, Any]) -> None:
    await ack()
    click = click_from_body(body)
    if click is not None:
        await services.answers.decline(click)
