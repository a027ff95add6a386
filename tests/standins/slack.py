"""A Slack stand-in: the Web API the bot calls, and Slack's side of delivering events,
clicks and modal submissions to the bot, over signed HTTP or a Socket Mode WebSocket.

Tests play the people: `user_says`, `click`, `submit_view`; and read what they would see:
`thread`, `channel_messages`, `ephemerals`, `opened_views`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

TEAM = "T0TEAM"
BOT_USER = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0APP"


@dataclass
class Fault:
    method: str
    times: int
    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    channel: str | None = None


@dataclass
class Message:
    channel: str
    ts: str
    user: str
    text: str
    thread_ts: str | None = None
    blocks: list[dict[str, Any]] | None = None
    metadata: dict[str, Any] | None = None
    bot_id: str | None = None
    reactions: set[str] = field(default_factory=set)
    edited: bool = False

    def as_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "message",
            "ts": self.ts,
            "user": self.user,
            "text": self.text,
        }
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.blocks is not None:
            out["blocks"] = self.blocks
        if self.metadata is not None:
            out["metadata"] = self.metadata
        if self.bot_id:
            out["bot_id"] = self.bot_id
        return out


class SlackStandIn:
    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-bot-token",
        app_token: str = "xapp-test-app-token",
        signing_secret: str = "test-signing-secret",
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.messages: list[Message] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.opened_views: list[dict[str, Any]] = []
        self.published_views: list[dict[str, Any]] = []
        self.members: dict[str, set[str]] = {}
        self.usergroups: dict[str, set[str]] = {}
        self.faults: list[Fault] = []
        self.stalls: dict[str, float] = {}  # method -> seconds to sit on an answer once
        self.post_listeners: list[Callable[[Message], None]] = []
        self.delivery = "http"  # or "socket"
        self.bot_url: str | None = None
        self.port = 0
        self._clock = itertools.count(1)
        self._last_ts = 0.0
        self._runner: web.AppRunner | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_turn = itertools.count()
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._session:
            await self._session.close()
        if self._runner:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    # ------------------------------------------------------------------ Web API

    def fail(
        self,
        method: str,
        *,
        times: int = 1,
        status: int = 200,
        error: str | None = None,
        retry_after: int | None = None,
        channel: str | None = None,
    ) -> None:
        """Make the next `times` calls of `method` (to `channel`, if given) fail: with an
        HTTP status (429 with Retry-After, 5xx) or with a Slack error in a 200 answer."""
        self.faults.append(Fault(method, times, status, error, retry_after, channel))

    def next_ts(self) -> str:
        """A message ts as Slack makes them: the time, unique within the workspace."""
        self._last_ts = max(time.time(), self._last_ts + 0.000001)
        return f"{self._last_ts:.6f}"

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [args for name, args in self.calls if name == method]

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _read_args(request)
        self.calls.append((method, args))
        for fault in self.faults:
            if fault.channel and args.get("channel") != fault.channel:
                continue
            if fault.method == method and fault.times > 0:
                fault.times -= 1
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
                if fault.status != 200:
                    body = {"ok": False, "error": fault.error or "ratelimited"}
                    return web.json_response(body, status=fault.status, headers=headers)
                return web.json_response({"ok": False, "error": fault.error or "internal_error"})
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        token = token or str(args.get("token", ""))
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        result = handler(args)
        if isinstance(result, str):
            return web.json_response({"ok": False, "error": result})
        if stall := self.stalls.pop(method, 0.0):
            # The call took effect; its answer is late (the caller may be gone by then).
            await asyncio.sleep(stall)
        return web.json_response({"ok": True, **result})

    def _m_auth_test(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://example.slack.com/",
            "team": "Example",
            "user": "hitl-bot",
            "team_id": TEAM,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
        }

    def _m_apps_connections_open(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"ws://127.0.0.1:{self.port}/socket?ticket={uuid.uuid4().hex}"}

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any] | str:
        channel = args.get("channel")
        if not channel:
            return "channel_not_found"
        if not (args.get("text") or args.get("blocks")):
            return "no_text"
        message = Message(
            channel=channel,
            ts=self.next_ts(),
            user=BOT_USER,
            text=args.get("text") or "",
            thread_ts=args.get("thread_ts") or None,
            blocks=args.get("blocks"),
            metadata=args.get("metadata"),
            bot_id=BOT_ID,
        )
        self.messages.append(message)
        for listener in self.post_listeners:
            listener(message)
        return {"channel": channel, "ts": message.ts, "message": message.as_api()}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any] | str:
        message = self.find(args.get("channel"), args.get("ts"))
        if message is None:
            return "message_not_found"
        message.text = args.get("text") or message.text
        if "blocks" in args:
            message.blocks = args.get("blocks")
        message.edited = True
        return {"channel": message.channel, "ts": message.ts}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        self.ephemerals.append(args)
        return {"message_ts": self.next_ts()}

    def _m_chat_getPermalink(self, args: dict[str, Any]) -> dict[str, Any] | str:
        message = self.find(args.get("channel"), args.get("message_ts"))
        if message is None:
            return "message_not_found"
        link = (
            f"https://example.slack.com/archives/{message.channel}/p{message.ts.replace('.', '')}"
        )
        if message.thread_ts:
            link += f"?thread_ts={message.thread_ts}&cid={message.channel}"
        return {"channel": message.channel, "permalink": link}

    def _m_reactions_add(self, args: dict[str, Any]) -> dict[str, Any] | str:
        message = self.find(args.get("channel"), args.get("timestamp"))
        if message is None:
            return "message_not_found"
        if args["name"] in message.reactions:
            return "already_reacted"
        message.reactions.add(args["name"])
        return {}

    def _m_reactions_remove(self, args: dict[str, Any]) -> dict[str, Any] | str:
        message = self.find(args.get("channel"), args.get("timestamp"))
        if message is None:
            return "message_not_found"
        if args["name"] not in message.reactions:
            return "no_reaction"
        message.reactions.discard(args["name"])
        return {}

    def _m_conversations_members(self, args: dict[str, Any]) -> dict[str, Any] | str:
        channel = args.get("channel")
        if channel not in self.members:
            return "channel_not_found"
        return {"members": sorted(self.members[channel]), "response_metadata": {"next_cursor": ""}}

    def _m_usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any] | str:
        group = args.get("usergroup")
        if group not in self.usergroups:
            return "no_such_subteam"
        return {"users": sorted(self.usergroups[group])}

    def _m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        root, oldest = args.get("ts"), float(args.get("oldest") or 0)
        found = [
            m
            for m in self.messages
            if m.channel == args.get("channel")
            and (m.ts == root or m.thread_ts == root)
            and float(m.ts) >= oldest
        ]
        return {"messages": [self._visible(m, args) for m in found], "has_more": False}

    def _m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        oldest = float(args.get("oldest") or 0)
        found = [
            m
            for m in self.messages
            if m.channel == args.get("channel") and not m.thread_ts and float(m.ts) >= oldest
        ]
        return {"messages": [self._visible(m, args) for m in reversed(found)], "has_more": False}

    @staticmethod
    def _visible(message: Message, args: dict[str, Any]) -> dict[str, Any]:
        data = message.as_api()
        if str(args.get("include_all_metadata")).lower() not in ("1", "true"):
            data.pop("metadata", None)
        return data

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any] | str:
        if not args.get("trigger_id"):
            return "invalid_trigger_id"
        view = dict(args["view"])
        view["id"] = "V" + uuid.uuid4().hex[:10].upper()
        view["opened_by_trigger"] = args["trigger_id"]
        self.opened_views.append(view)
        return {"view": view}

    def _m_views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"view": args.get("view")}

    def _m_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        self.published_views.append(args)
        return {"view": args.get("view")}

    # ------------------------------------------------------------------ what people see

    def find(self, channel: str | None, ts: str | None) -> Message | None:
        for message in self.messages:
            if message.channel == channel and message.ts == ts:
                return message
        return None

    def thread(self, channel: str, root: str, *, bots_only: bool = False) -> list[Message]:
        """The replies in a thread, oldest first (the root not included)."""
        return [
            m
            for m in self.messages
            if m.channel == channel and m.thread_ts == root and (not bots_only or m.bot_id)
        ]

    def bot_replies(self, channel: str, root: str) -> list[str]:
        return [m.text for m in self.thread(channel, root, bots_only=True)]

    def channel_messages(self, channel: str) -> list[Message]:
        return [m for m in self.messages if m.channel == channel and not m.thread_ts]

    # ------------------------------------------------------------------ delivering to the bot

    async def user_says(
        self,
        user: str,
        channel: str,
        text: str,
        *,
        thread_ts: str | None = None,
        channel_type: str = "channel",
        as_events: tuple[str, ...] | None = None,
    ) -> Message:
        """A person posts; Slack sends the bot what its subscriptions ask for."""
        message = Message(
            channel=channel, ts=self.next_ts(), user=user, text=text, thread_ts=thread_ts
        )
        self.messages.append(message)
        if as_events is None:
            as_events = ("message",)
            if f"<@{BOT_USER}>" in text and channel_type != "im":
                as_events = ("app_mention", "message")
        for kind in as_events:
            await self.deliver_event(self.message_event(message, kind, channel_type))
        return message

    def message_event(self, message: Message, kind: str, channel_type: str) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": kind,
            "user": message.user,
            "text": message.text,
            "ts": message.ts,
            "channel": message.channel,
            "event_ts": message.ts,
            "team": TEAM,
            "client_msg_id": str(uuid.uuid4()),
            "blocks": [
                {
                    "type": "rich_text",
                    "block_id": "b1",
                    "elements": [
                        {
                            "type": "rich_text_section",
                            "elements": [{"type": "text", "text": message.text}],
                        }
                    ],
                }
            ],
        }
        if kind == "message":
            event["channel_type"] = channel_type
        if message.thread_ts:
            event["thread_ts"] = message.thread_ts
            event["parent_user_id"] = BOT_USER
        return self.event_callback(event)

    def event_callback(self, event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
        return {
            "token": "legacy-verification-token",
            "team_id": TEAM,
            "context_team_id": TEAM,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or "Ev" + uuid.uuid4().hex[:12].upper(),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM,
                    "user_id": BOT_USER,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + uuid.uuid4().hex,
        }

    async def deliver_event(self, body: dict[str, Any], *, retry_num: int | None = None) -> int:
        """Send an Events API payload; returns the HTTP status. Over Socket Mode: 200 when
        the bot acknowledged it within 3 s, 0 when it did not (Slack would then retry)."""
        if self.delivery == "socket":
            try:
                await self.socket_send(
                    "events_api", body, retry_attempt=retry_num or 0, timeout=3.0
                )
            except TimeoutError:
                return 0
            return 200
        headers = {"Content-Type": "application/json"}
        if retry_num is not None:
            headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "timeout"}
        status, _ = await self.post_signed(json.dumps(body), headers)
        return status

    def interactive_base(self, user: str) -> dict[str, Any]:
        return {
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
            "api_app_id": APP_ID,
            "token": "legacy-verification-token",
            "team": {"id": TEAM, "domain": "example"},
            "is_enterprise_install": False,
            "enterprise": None,
        }

    async def click(self, user: str, message: Message, action_id: str) -> dict[str, Any] | None:
        """A person presses a button on a message; returns Slack's view of the ack."""
        button = next(
            e
            for b in message.blocks or []
            if b.get("type") == "actions"
            for e in b["elements"]
            if e.get("action_id") == action_id
        )
        payload = self.interactive_base(user) | {
            "type": "block_actions",
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "is_ephemeral": False,
            },
            "trigger_id": f"{next(self._clock)}.{uuid.uuid4().hex[:8]}",
            "channel": {"id": message.channel, "name": "experts"},
            "message": message.as_api(),
            "state": {"values": {}},
            "response_url": f"http://127.0.0.1:{self.port}/response/{uuid.uuid4().hex}",
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "request_actions",
                    "text": button["text"],
                    "value": button.get("value"),
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return await self.deliver_interactive(payload)

    async def submit_view(self, user: str, view: dict[str, Any], answer: str | None) -> Any:
        """A person submits an opened modal with text in its answer field."""
        values: dict[str, Any] = {}
        for block in view.get("blocks") or []:
            if block.get("type") == "input":
                element = block["element"]
                values[block["block_id"]] = {
                    element["action_id"]: {"type": element["type"], "value": answer}
                }
        payload = self.interactive_base(user) | {
            "type": "view_submission",
            "trigger_id": f"{next(self._clock)}.{uuid.uuid4().hex[:8]}",
            "view": {
                **view,
                "state": {"values": values},
                "hash": uuid.uuid4().hex,
                "team_id": TEAM,
                "app_id": APP_ID,
                "bot_id": BOT_ID,
            },
            "response_urls": [],
        }
        return await self.deliver_interactive(payload)

    async def deliver_interactive(self, payload: dict[str, Any]) -> Any:
        """Returns the ack's payload (None when empty); raises on a non-200 HTTP answer."""
        if self.delivery == "socket":
            return await self.socket_send("interactive", payload)
        from urllib.parse import urlencode

        body = urlencode({"payload": json.dumps(payload)})
        status, text = await self.post_signed(
            body, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        if status != 200:
            raise AssertionError(f"bot answered {status}: {text}")
        return json.loads(text) if text.strip().startswith("{") else None

    async def post_signed(
        self,
        body: str,
        headers: dict[str, str],
        *,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> tuple[int, str]:
        assert self._session is not None and self.bot_url is not None
        ts = str(timestamp if timestamp is not None else int(time.time()))
        signature = SignatureVerifier(secret or self.signing_secret).generate_signature(
            timestamp=ts, body=body
        )
        headers = headers | {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}
        async with self._session.post(self.bot_url, data=body.encode(), headers=headers) as resp:
            return resp.status, await resp.text()

    # ------------------------------------------------------------------ Socket Mode

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {"host": "standin"},
                "connection_info": {"app_id": APP_ID},
            }
        )
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                future = self._acks.pop(data.get("envelope_id", ""), None)
                if future and not future.done():
                    future.set_result(data)
        finally:
            with contextlib.suppress(ValueError):
                self._sockets.remove(ws)
        return ws

    async def wait_for_sockets(self, count: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while len([s for s in self._sockets if not s.closed]) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} Socket Mode connections never opened")
            await asyncio.sleep(0.05)

    async def socket_send(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        retry_attempt: int = 0,
        connection: int | None = None,
        timeout: float = 10.0,
    ) -> Any:
        """Send an envelope over one open connection (round robin, as Slack spreads them)
        and wait for its ack; returns the ack's payload."""
        open_sockets = [s for s in self._sockets if not s.closed]
        if not open_sockets:
            raise AssertionError("no Socket Mode connection is open")
        index = next(self._socket_turn) if connection is None else connection
        ws = open_sockets[index % len(open_sockets)]
        envelope_id = str(uuid.uuid4())
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        await ws.send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": retry_attempt,
                "retry_reason": "timeout" if retry_attempt else "",
            }
        )
        ack = await asyncio.wait_for(future, timeout)
        return ack.get("payload") or None


async def _read_args(request: web.Request) -> dict[str, Any]:
    raw = await request.text()
    if request.content_type == "application/json":
        args = json.loads(raw) if raw else {}
    else:
        args = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        args |= dict(request.query)
    for key in ("blocks", "metadata", "view", "attachments"):
        if isinstance(args.get(key), str):
            with contextlib.suppress(ValueError):
                args[key] = json.loads(args[key])
    return args
