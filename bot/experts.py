"""Who may answer expert requests: members of the expert channel, or the listed users and
user group when those are configured. When Slack cannot tell us, the answer is no."""

from __future__ import annotations

import asyncio
import logging
import time

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)


class ExpertCheckUnavailable(Exception):
    """Membership could not be read from Slack; the caller must refuse."""


class ExpertDirectory:
    def __init__(
        self,
        client: AsyncWebClient,
        *,
        expert_channel: str,
        expert_users: frozenset[str] = frozenset(),
        expert_usergroup: str | None = None,
        cache_seconds: float = 60.0,
        timeout_seconds: float = 2.0,
    ) -> None:
        self._client = client
        self._channel = expert_channel
        self._users = expert_users
        self._usergroup = expert_usergroup
        self._cache_seconds = cache_seconds
        self._timeout = timeout_seconds
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = asyncio.Lock()

    @property
    def rule(self) -> str:
        """Who counts as an expert, in mrkdwn for the people who are refused."""
        if self._users or self._usergroup:
            return "the people configured as experts"
        return f"members of <#{self._channel}>"

    async def is_expert(self, user_id: str) -> bool:
        """Whether this user may answer; raises ExpertCheckUnavailable when Slack fails."""
        if self._users or self._usergroup:
            if user_id in self._users:
                return True
            if self._usergroup:
                return user_id in await self._members("usergroup", self._usergroup)
            return False
        return user_id in await self._members("channel", self._channel)

    def forget(self) -> None:
        """Drop cached memberships (someone joined or left the expert channel)."""
        self._cache.clear()

    async def _members(self, kind: str, ident: str) -> frozenset[str]:
        cache_key = f"{kind}:{ident}"
        cached = self._cache.get(cache_key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        async with self._lock:
            cached = self._cache.get(cache_key)
            if cached and cached[0] > time.monotonic():
                return cached[1]
            try:
                members = await asyncio.wait_for(self._fetch(kind, ident), self._timeout)
            except (SlackApiError, TimeoutError, OSError) as exc:
                detail = exc.response.get("error") if isinstance(exc, SlackApiError) else exc
                log.warning("Cannot read the members of %s %s: %r", kind, ident, detail)
                raise ExpertCheckUnavailable(str(detail)) from exc
            self._cache[cache_key] = (time.monotonic() + self._cache_seconds, members)
            return members

    async def _fetch(self, kind: str, ident: str) -> frozenset[str]:
        if kind == "usergroup":
            response = await self._client.usergroups_users_list(usergroup=ident)
            return frozenset(response.get("users") or [])
        members: set[str] = set()
        cursor = None
        while True:
            response = await self._client.conversations_members(
                channel=ident, limit=1000, cursor=cursor
            )
            members.update(response.get("members") or [])
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return frozenset(members)
