"""The chat model client."""

from __future__ import annotations

from typing import Any

from langchain_openai import ChatOpenAI


class LeanChatOpenAI(ChatOpenAI):
    """`ChatOpenAI` whose chat-completions requests skip the `openai` client's per-request
    transformation of the message list.

    For each request the client walks every message against its TypedDict annotations,
    with `typing` reflection at every level: measured with py-spy, it was the largest CPU
    cost of a turn (a third of it), growing with the length of the thread, and it changes
    nothing in plain JSON messages. The messages travel in `extra_body` instead, which the
    client merges into the JSON body as is: the request on the wire is the same.
    """

    def _get_request_payload(self, input_: Any, *, stop: Any = None, **kwargs: Any) -> dict:
        payload = super()._get_request_payload(input_, stop=stop, **kwargs)
        if isinstance(payload.get("messages"), list):
            payload["extra_body"] = {
                **(payload.get("extra_body") or {}),
                "messages": payload["messages"],
            }
            payload["messages"] = []
        return payload
