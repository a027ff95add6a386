"""Plain values the service layer passes around: a Slack thread and a message in it."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class ThreadRef:
    """One Slack thread, which is one graph thread: (team, channel, thread root)."""

    team: str
    channel: str
    root: str  # ts of the thread's first message

    @property
    def id(self) -> str:
        return f"{self.team}:{self.channel}:{self.root}"


@dataclass(frozen=True)
class IncomingMessage:
    """A message accepted for the agent, as recorded in the thread's inbox."""

    team: str
    channel: str
    ts: str
    root: str
    user: str
    text: str  # plain text for the model, the bot's mention removed

    @property
    def thread(self) -> ThreadRef:
        return ThreadRef(self.team, self.channel, self.root)

    @property
    def id(self) -> str:
        """Stable across Slack's duplicate deliveries: the message's own address."""
        return f"{self.team}:{self.channel}:{self.ts}"

    def to_json(self) -> str:
        fields = {
            "team": self.team,
            "channel": self.channel,
            "ts": self.ts,
            "root": self.root,
            "user": self.user,
            "text": self.text,
        }
        return json.dumps(fields, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> IncomingMessage:
        return cls(**json.loads(raw))
