"""Thin Slack listeners; each calls the service layer. `register` wires them to the app."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext

from bot import ids
from bot.listeners.actions import handle_answer_click, handle_decline_click
from bot.listeners.events import (
    handle_app_home_opened,
    handle_membership_change,
    handle_message_event,
)
from bot.listeners.views import handle_answer_submission
from bot.services import Services


def register(app: AsyncApp, services: Services) -> None:
    @app.event("app_mention")
    async def app_mention(event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext):
        await handle_message_event(services, event, body, context)

    @app.event("message")
    async def message(event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext):
        await handle_message_event(services, event, body, context)

    @app.event("member_joined_channel")
    async def member_joined(event: dict[str, Any]):
        await handle_membership_change(services, event)

    @app.event("member_left_channel")
    async def member_left(event: dict[str, Any]):
        await handle_membership_change(services, event)

    @app.event("app_home_opened")
    async def app_home_opened(event: dict[str, Any], context: AsyncBoltContext):
        await handle_app_home_opened(services, event, context)

    @app.action(ids.ANSWER_ACTION)
    async def answer_clicked(ack: AsyncAck, body: dict[str, Any]):
        await handle_answer_click(services, ack, body)

    @app.action(ids.DECLINE_ACTION)
    async def decline_clicked(ack: AsyncAck, body: dict[str, Any]):
        await handle_decline_click(services, ack, body)

    @app.view(ids.ANSWER_MODAL)
    async def answer_submitted(ack: AsyncAck, body: dict[str, Any]):
        await handle_answer_submission(services, ack, body)
