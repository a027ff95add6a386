"""Event listeners: hand messages to the intake, keep caches fresh, draw App Home."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext

from bot import blocks
from bot.experts import ExpertCheckUnavailable
from bot.payload import text_at
from bot.services import Services

log = logging.getLogger(__name__)


async def handle_message_event(
    services: Services, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
) -> None:
    """`message` and `app_mention`: recorded before Slack's ack (process_before_response)."""
    team_id = text_at(body, "team_id") or context.team_id or ""
    await services.intake.accept_event(event, team_id=team_id, bot_user_id=context.bot_user_id)


async def handle_membership_change(services: Services, event: dict[str, Any]) -> None:
    if event.get("channel") == services.settings.expert_channel:
        services.experts.forget()


async def handle_app_home_opened(
    services: Services, event: dict[str, Any], context: AsyncBoltContext
) -> None:
    user = text_at(event, "user")
    if event.get("tab") not in (None, "home") or user is None:
        return
    try:
        is_expert = await services.experts.is_expert(user)
    except ExpertCheckUnavailable:
        is_expert = False
    view = blocks.home_view(
        expert_channel=services.settings.expert_channel,
        pending_requests=await services.requests.pending_count() if is_expert else 0,
        is_expert=is_expert,
    )
    await context.client.views_publish(user_id=user, view=view)
