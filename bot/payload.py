"""Reading fields from Slack payloads that may not have the shape Slack documents."""

from __future__ import annotations

from typing import Any


def text_at(data: Any, *path: str) -> str | None:
    """The string at `path` inside nested dicts, or None if any step is missing or not
    of the expected type: a signed but odd payload is ignored, never a crash."""
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data if isinstance(data, str) and data else None
