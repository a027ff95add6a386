"""Button listeners on expert request messages."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck

from bot.answers import Click
from bot.services import Services


def click_from_body(body: dict[str, Any]) -> Click | None:
    actions = body.get("actions") or []
    action = actions[0] if actions and isinstance(actions[0], dict) else {}
    team = (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
    user = (body.get("user") or {}).get("id")
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id"
    )
    if not (team and user and channel and isinstance(action.get("value"), str)):
        return None
    return Click(
        team=team,
        user=user,
        request_id=action["value"],
        channel=channel,
        trigger_id=str(body.get("trigger_id") or ""),
        message_ts=(body.get("message") or {}).get("ts"),
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
