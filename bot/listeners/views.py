"""Modal listeners."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck

from bot.payload import text_at
from bot.services import Services


async def handle_answer_submission(services: Services, ack: AsyncAck, body: dict[str, Any]) -> None:
    """The answer modal: validate, authorise and claim, all before the ack that closes it."""
    view = body.get("view") if isinstance(body.get("view"), dict) else {}
    team = text_at(body, "team", "id") or text_at(body, "user", "team_id") or ""
    user = text_at(body, "user", "id") or ""
    response = await services.answers.submit_answer(
        team=team, user=user, view=view, channel=services.settings.expert_channel
    )
    if response is None:
        await ack()
    else:
        await ack(**response)
