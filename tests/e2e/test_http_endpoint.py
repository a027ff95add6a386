"""Slack's HTTP endpoint turns away what Slack did not sign, and what no listener can read."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time

import aiohttp

from tests.e2e.helpers import CHANNEL
from tests.standins.chat_model import ChatModelStandIn
from tests.standins.slack import BOT_USER, SlackStandIn


async def _post(url: str, body: bytes | str, headers: dict[str, str]) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status, await response.text()


def _mention_body(slack: SlackStandIn) -> str:
    event = {
        "type": "app_mention",
        "user": "U0ASKER",
        "text": f"<@{BOT_USER}> hi",
        "ts": slack.next_ts(),
        "channel": CHANNEL,
    }
    return json.dumps(slack.event_callback(event))


async def test_unsigned_forged_and_stale_requests_get_401(
    http_bot, slack: SlackStandIn, model: ChatModelStandIn
):
    body = _mention_body(slack)
    json_type = {"Content-Type": "application/json"}
    status, _ = await _post(http_bot.events_url, body, json_type)
    assert status == 401
    forged = json_type | {
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "0" * 64,
    }
    assert (await _post(http_bot.events_url, body, forged))[0] == 401
    wrong_secret = await slack.post_signed(body, json_type, secret="not-the-secret")
    assert wrong_secret[0] == 401
    stale = await slack.post_signed(body, json_type, timestamp=int(time.time()) - 3600)
    assert stale[0] == 401
    await asyncio.sleep(0.3)
    assert model.requests == [] and slack.calls_to("chat.postMessage") == []


async def test_malformed_signed_bodies_get_4xx_not_500(
    http_bot, slack: SlackStandIn, model: ChatModelStandIn
):
    cases = [
        ("{not json", "application/json"),
        ("[]", "application/json"),
        ('{"type": "event_callback"}', "application/json"),
        ('{"type": "event_callback", "event": "x"}', "application/json"),
        ("payload=%7Bbroken", "application/x-www-form-urlencoded"),
        ("payload=%5B%5D", "application/x-www-form-urlencoded"),
        ('payload={"type":"block_actions"}', "application/x-www-form-urlencoded"),
        (
            'payload={"type":"view_submission","user":{"id":"U1"}}',
            "application/x-www-form-urlencoded",
        ),
        ("just some text", "text/plain"),
        ("a=%ZZ&&==", "application/x-www-form-urlencoded"),
        ('{"type": "event_callback", "event": {"type": "message"}}', "application/json"),
        # Signed, parseable, and odd: fields of the wrong type.
        (
            '{"type": "event_callback", "team_id": 5, "event": {"type": "app_mention", '
            '"user": {"id": 1}, "text": ["x"], "channel": 7, "ts": null}}',
            "application/json",
        ),
        (
            '{"type": "event_callback", "event": {"type": "message", "channel_type": "im", '
            '"user": "U1", "channel": "D1", "ts": "1.0", "text": {"a": 1}}}',
            "application/json",
        ),
        (
            'payload={"type":"block_actions","team":"T1","user":{"id":"U1"},"actions":["x"]}',
            "application/x-www-form-urlencoded",
        ),
        (
            'payload={"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":'
            '"expert_request.answer","value":{"x":1}}],"channel":[]}',
            "application/x-www-form-urlencoded",
        ),
        (
            'payload={"type":"view_submission","user":{"id":"U1"},"team":null,"view":{"callback_id":'
            '"expert_request.answer_modal","private_metadata":["x"],"state":"odd"}}',
            "application/x-www-form-urlencoded",
        ),
    ]
    for body, content_type in cases:
        status, text = await slack.post_signed(body, {"Content-Type": content_type})
        assert 400 <= status < 500 or status == 200, (body, status, text)
    invalid_utf8 = b"\xff\xfe{}"
    status, _ = await _post_signed_bytes(slack, http_bot.events_url, invalid_utf8)
    assert status == 400
    await asyncio.sleep(0.3)
    assert model.requests == []


async def _post_signed_bytes(slack: SlackStandIn, url: str, body: bytes) -> tuple[int, str]:
    ts = str(int(time.time()))
    base = b"v0:" + ts.encode() + b":" + body
    signature = "v0=" + hmac.new(slack.signing_secret.encode(), base, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }
    return await _post(url, body, headers)


async def test_url_verification_is_answered(http_bot, slack: SlackStandIn):
    body = json.dumps({"token": "t", "challenge": "c-123", "type": "url_verification"})
    status, text = await slack.post_signed(body, {"Content-Type": "application/json"})
    assert status == 200
    assert "c-123" in text


async def test_health_reports_redis(http_bot):
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{http_bot.port}/health") as response,
    ):
        assert response.status == 200
        body = await response.json()
    assert body["redis"] == "ok" and body["mode"] == "http"
