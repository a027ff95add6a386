"""The Bolt app: Slack's requests in, listeners wired to the service layer."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp

from bot.listeners import register
from bot.services import Services


def build_app(services: Services) -> AsyncApp:
    settings = services.settings
    secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    )
    # Bolt also reads SLACK_BOT_TOKEN from the environment and warns that our client (with
    # its API URL and retry handlers) takes precedence; it does, so the warning is noise.
    bolt_logger = logging.getLogger("bot.bolt")
    bolt_logger.setLevel(logging.ERROR)
    app = AsyncApp(
        client=services.slack,
        signing_secret=secret,
        logger=bolt_logger,
        # HTTP requests are verified in bot/server.py before they get here (over raw
        # bytes, and without the 500 Bolt gives a body it cannot parse); Socket Mode
        # needs none.
        request_verification_enabled=False,
        # Listeners only record work in Redis, so they finish before Slack's ack is
        # sent: an acknowledged event is already durable.
        process_before_response=True,
        # Middleware for features this bot does not use (workflow functions, assistant
        # threads): each would run on every request.
        attaching_function_token_enabled=False,
        attaching_conversation_kwargs_enabled=False,
    )
    bolt_logger.setLevel(logging.NOTSET)
    register(app, services)
    return app
