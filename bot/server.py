"""Serving: Slack's HTTP endpoint or Socket Mode, a health endpoint, graceful shutdown."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import signal
import time
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.app import build_app
from bot.services import Services, build_services, until_stopped
from bot.settings import Settings
from bot.worker import SHUTDOWN_GRACE_SECONDS
from bot.worker_processes import WorkerPool

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/health"
MAX_BODY_BYTES = 1024 * 1024
MAX_CLOCK_SKEW_SECONDS = 300

# What must hold of a payload before Bolt reads it (Bolt indexes into these without checks):
# field -> the types it may have. A missing field is fine unless required below.
_OBJECT = (dict, type(None))
_INTERACTIVE_FIELDS: dict[str, tuple[type, ...]] = {
    "team": _OBJECT,
    "user": (dict,),
    "channel": _OBJECT,
    "container": _OBJECT,
    "message": _OBJECT,
    "view": _OBJECT,
    "enterprise": _OBJECT,
    "trigger_id": (str, type(None)),
}
_INTERACTIVE_REQUIRED = {
    "block_actions": ("actions", list),
    "view_submission": ("view", dict),
    "view_closed": ("view", dict),
    "shortcut": ("callback_id", str),
    "message_action": ("callback_id", str),
    "block_suggestion": ("action_id", str),
}
_EVENT_FIELDS: dict[str, tuple[type, ...]] = {
    "user": (str, dict, type(None)),
    "channel": (str, dict, type(None)),
    "text": (str, type(None)),
    "ts": (str, type(None)),
    "thread_ts": (str, type(None)),
    "team": (str, type(None)),
    "item": _OBJECT,
    "message": _OBJECT,
    "previous_message": _OBJECT,
}


def _wrong_field(data: dict[str, Any], fields: dict[str, tuple[type, ...]]) -> str | None:
    for name, types in fields.items():
        if name in data and not isinstance(data[name], types):
            return name
    return None


def _interactive_problem(payload: dict[str, Any]) -> str | None:
    kind = payload["type"]
    wrong = _wrong_field(payload, _INTERACTIVE_FIELDS)
    if wrong:
        return f"{kind} payload with an odd {wrong}"
    required = _INTERACTIVE_REQUIRED.get(kind)
    if required is None:
        return None
    if not isinstance(payload.get(required[0]), required[1]):
        return f"{kind} payload without {required[0]}"
    if not isinstance((payload.get("user") or {}).get("id"), str):
        return f"{kind} payload without a user"
    if kind == "block_actions" and not all(
        isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in payload["actions"]
    ):
        return "block_actions payload with odd actions"
    if kind in ("view_submission", "view_closed") and not all(
        isinstance(payload["view"].get(name), str) for name in ("type", "callback_id")
    ):
        return f"{kind} payload with an odd view"
    return None


def malformed_reason(content_type: str, text: str) -> str | None:
    """Why a (correctly signed) body is not a Slack request we can route, or None."""
    if content_type == "application/json":
        try:
            payload = json.loads(text)
        except ValueError:
            return "body is not valid JSON"
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            return "JSON body has no type"
        if not isinstance(payload.get("team_id", ""), str):
            return "odd team_id"
        if payload["type"] == "event_callback":
            event = payload.get("event")
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                return "event_callback without an event"
            wrong = _wrong_field(event, _EVENT_FIELDS)
            if wrong:
                return f"event with an odd {wrong}"
        return None
    if content_type == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
        except ValueError:
            return "body is not valid form data"
        if "payload" not in form:
            return None if "command" in form or "ssl_check" in form else "form without payload"
        try:
            payload = json.loads(form["payload"][0])
        except ValueError:
            return "payload is not valid JSON"
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            return "payload has no type"
        return _interactive_problem(payload)
    return f"unsupported content type {content_type!r}"


def slack_signature_valid(
    secret: bytes, body: bytes, headers: dict[str, str], now: float | None = None
) -> bool:
    """Slack's v0 signature over timestamp and raw body bytes, within five minutes of now.

    Computed here over bytes: slack_sdk's verifier decodes the body first and raises on
    bytes that are not UTF-8.
    """
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not timestamp.isdigit() or not signature:
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def http_routes(
    app: AsyncApp, services: Services, pool: WorkerPool | None = None
) -> web.Application:
    settings = services.settings
    secret = (
        settings.slack_signing_secret.get_secret_value().encode()
        if settings.slack_signing_secret
        else None
    )

    async def slack_events(request: web.Request) -> web.Response:
        if secret is None:
            return web.json_response({"error": "HTTP mode is off (Socket Mode)"}, status=404)
        raw = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        # The signature first: nothing unsigned is parsed, let alone routed.
        if not slack_signature_valid(secret, raw, headers):
            return web.json_response({"error": "invalid signature"}, status=401)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return web.json_response({"error": "body is not UTF-8"}, status=400)
        reason = malformed_reason(request.content_type, text)
        if reason:
            return web.json_response({"error": reason}, status=400)
        try:
            bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=headers)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError):
            # Bolt reads ids out of the payload as it builds the request; fields of types
            # Slack never sends make it fail there.
            return web.json_response({"error": "payload fields of unexpected types"}, status=400)
        try:
            bolt_response = await app.async_dispatch(bolt_request)
        except Exception:
            log.exception("Could not handle a Slack request")
            return web.json_response({"error": "temporarily unavailable"}, status=503)
        if bolt_response.status >= 500:
            # A listener could not record the request (Redis down): not acknowledged, so
            # Slack delivers it again later.
            return web.json_response({"error": "temporarily unavailable"}, status=503)
        return await to_aiohttp_response(bolt_response)

    async def health(_: web.Request) -> web.Response:
        redis_ok = await services.redis_ok()
        body: dict[str, Any] = {
            "status": "ok" if redis_ok else "degraded",
            "redis": "ok" if redis_ok else "unreachable",
            "mode": "socket" if settings.socket_mode else "http",
        }
        if services.worker is not None:
            body["turns_in_flight"] = services.worker.in_flight
        if pool is not None:
            body["worker_processes"] = {
                "configured": pool.count,
                "alive": pool.alive,
                "ready": pool.ready,
            }
        return web.json_response(body, status=200 if redis_ok else 503)

    web_app = web.Application(client_max_size=MAX_BODY_BYTES)
    web_app.router.add_post(EVENTS_PATH, slack_events)
    web_app.router.add_get(HEALTH_PATH, health)
    return web_app


async def serve(settings: Settings, redis_url: str, *, stop: asyncio.Event | None = None) -> None:
    """Run the bot until SIGTERM/SIGINT, or until `stop` is set when one is given, then
    shut down within 10 s."""
    if stop is None:  # a process of its own: signals stop it
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    # Turns run here, or in worker processes (WORKER_PROCESSES > 0) so that this process
    # only acknowledges Slack: its acknowledgements then never wait behind a turn.
    in_process = settings.worker_processes == 0
    services = await until_stopped(build_services(settings, redis_url, run_turns=in_process), stop)
    if services is None:
        log.info("Stopped before Redis could be reached")
        return
    pool = None if in_process else WorkerPool(settings, redis_url, settings.worker_processes)
    app = build_app(services)
    runner = web.AppRunner(http_routes(app, services, pool), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    socket_handler: AsyncSocketModeHandler | None = None
    try:
        if pool is not None:
            pool.start()
        if services.worker is not None:
            await services.worker.start()
        if settings.socket_mode and settings.slack_app_token:
            socket_handler = AsyncSocketModeHandler(
                app, settings.slack_app_token.get_secret_value(), web_client=services.slack
            )
            await socket_handler.connect_async()
        log.info(
            "Bot ready: %s, health on port %d, turns %s",
            "Socket Mode" if socket_handler else f"HTTP on port {settings.port}{EVENTS_PATH}",
            settings.port,
            "in this process" if in_process else f"in {settings.worker_processes} worker processes",
        )
        await stop.wait()
        log.info("Shutting down: no new work; running turns get %.0f s", SHUTDOWN_GRACE_SECONDS)
    finally:
        if socket_handler is not None:
            await socket_handler.close_async()
        await site.stop()  # HTTP: no new requests; Slack retries them on another process
        if services.worker is not None:
            await services.worker.stop(SHUTDOWN_GRACE_SECONDS)
        if pool is not None:
            await pool.stop(SHUTDOWN_GRACE_SECONDS + 2.0)
        await runner.cleanup()
        await services.aclose()
        log.info("Stopped")
