"""An OpenAI-compatible chat-completions stand-in with a small, predictable "brain".

What it answers, given the conversation it is sent:
- after tool results: "The expert says: <answer>" (all results of the turn, joined);
- "ask an expert: Q"        -> a human_assistance tool call with query Q;
- "ask experts: Q1 | Q2"    -> two parallel human_assistance calls;
- "what did I say first?"   -> quotes the first user message it can see;
- "write N characters"      -> a Markdown answer at least N characters long;
- "show markdown"           -> a reply with headings, bold, links and a list;
- "bench: ..."              -> a paragraph of ordinary length (about 450 characters);
- anything else             -> "Echo: <the message>".
Faults can be queued: HTTP errors (500, 429 with Retry-After) or a hang.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

MARKDOWN_SAMPLE = (
    "# Summary\n\nThis is **important** and *subtle*, see [the docs](https://example.com/docs)."
    "\n\n- first point\n- second point with `code`\n\n~~old~~ new"
)


BENCH_REPLY = (
    "Here is what I found about {}. The short answer is yes, with two caveats. First, the "
    "change must be reviewed by someone who owns the service, and the review should look at "
    "the rollback plan as much as at the code. Second, run it in staging for a day with real "
    "traffic before it reaches production; most problems of this kind show up under load, not "
    "in tests. If either caveat is a problem, tell me and we can look for another way."
)


@dataclass
class ModelFault:
    times: int
    status: int = 500
    retry_after: float | None = None
    hang_seconds: float = 0.0


class ChatModelStandIn:
    def __init__(self, api_key: str = "sk-test-openai-key-0000") -> None:
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.faults: list[ModelFault] = []
        self.latency = 0.0
        self.port = 0
        self._runner: web.AppRunner | None = None
        self.in_flight = 0

    async def start(self, port: int = 0) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def fail(
        self,
        *,
        times: int = 1,
        status: int = 500,
        retry_after: float | None = None,
        hang_seconds: float = 0.0,
    ) -> None:
        self.faults.append(ModelFault(times, status, retry_after, hang_seconds))

    def user_texts(self, request_index: int = -1) -> list[str]:
        """The user messages the model was shown in one request."""
        messages = self.requests[request_index]["messages"]
        return [_content(m) for m in messages if m.get("role") == "user"]

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "bad key", "type": "auth"}}, status=401)
        body = await request.json()
        self.requests.append(body)
        self.in_flight += 1
        try:
            for fault in self.faults:
                if fault.times > 0:
                    fault.times -= 1
                    if fault.hang_seconds:
                        await asyncio.sleep(fault.hang_seconds)
                        break
                    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
                    error = {"error": {"message": "stand-in fault", "type": "server_error"}}
                    return web.json_response(error, status=fault.status, headers=headers)
            if self.latency:
                await asyncio.sleep(self.latency)
            message = reply_for(body["messages"])
        finally:
            self.in_flight -= 1
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        completion = {
            "id": "chatcmpl-" + uuid.uuid4().hex[:12],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "stand-in"),
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }
        if body.get("stream"):
            return await _stream(request, completion)
        return web.json_response(completion)


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def _tool_call(query: str) -> dict[str, Any]:
    return {
        "id": "call_" + uuid.uuid4().hex[:16],
        "type": "function",
        "function": {"name": "human_assistance", "arguments": json.dumps({"query": query})},
    }


def reply_for(messages: list[dict[str, Any]]) -> dict[str, Any]:
    last = messages[-1]
    if last.get("role") == "tool":
        results = []
        for message in reversed(messages):
            if message.get("role") != "tool":
                break
            results.insert(0, _content(message))
        return {"role": "assistant", "content": "The expert says: " + " / ".join(results)}
    text = _content(last).strip()
    lowered = text.lower()
    if lowered.startswith("ask experts:"):
        questions = [q.strip() for q in text.split(":", 1)[1].split("|") if q.strip()]
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [_tool_call(q) for q in questions],
        }
    if lowered.startswith("ask an expert:"):
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [_tool_call(text.split(":", 1)[1].strip())],
        }
    if "what did i say first" in lowered:
        users = [_content(m) for m in messages if m.get("role") == "user"]
        return {"role": "assistant", "content": f"You first said: {users[0]}"}
    if match := re.search(r"write (\d+) characters", lowered):
        size = int(match.group(1))
        paragraph = "This is a sentence of a long answer, with some words in it. " * 8
        parts, total, n = [], 0, 0
        while total < size:
            n += 1
            part = f"Paragraph {n}. {paragraph.strip()}"
            parts.append(part)
            total += len(part) + 2
        return {"role": "assistant", "content": "\n\n".join(parts) + "\n\nTHE END."}
    if lowered.startswith("bench:"):
        return {"role": "assistant", "content": BENCH_REPLY.format(text[6:40].strip())}
    if "show markdown" in lowered:
        return {"role": "assistant", "content": MARKDOWN_SAMPLE}
    return {"role": "assistant", "content": f"Echo: {text}"}


async def _stream(request: web.Request, completion: dict[str, Any]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    choice = completion["choices"][0]
    delta: dict[str, Any] = {"role": "assistant", "content": choice["message"].get("content")}
    if choice["message"].get("tool_calls"):
        delta["tool_calls"] = [
            {"index": i, **call} for i, call in enumerate(choice["message"]["tool_calls"])
        ]
    chunks = [
        {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]},
    ]
    for chunk in chunks:
        chunk |= {
            "id": completion["id"],
            "object": "chat.completion.chunk",
            "created": completion["created"],
            "model": completion["model"],
        }
        await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response
