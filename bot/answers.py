"""What happens when an expert acts on a request: the Answer and Decline buttons, and the
answer modal's submission. Everything a button or the modal carries is untrusted: only an
opaque request id, looked up and checked here."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import blocks, ids
from bot.experts import ExpertCheckUnavailable, ExpertDirectory
from bot.payload import text_at
from bot.requests import ExpertRequest, RequestStore, Status
from bot.slack_effects import SlackEffects, slack_error

log = logging.getLogger(__name__)

NOT_AN_EXPERT = "Only experts can act on these requests: {rule}. Nothing was sent."
CANNOT_VERIFY = (
    "I couldn't check with Slack whether you are an expert, so I can't take this answer. "
    "Please try again in a moment."
)
STORAGE_DOWN = "Your answer couldn't be saved just now. Please try again in a moment."
BLANK_ANSWER = "Please write an answer before sending it."


@dataclass(frozen=True)
class Click:
    """A button press on a request message, as Slack sent it."""

    team: str
    user: str
    request_id: str
    channel: str
    trigger_id: str


class AnswerService:
    def __init__(
        self,
        *,
        client: AsyncWebClient,
        requests: RequestStore,
        experts: ExpertDirectory,
        effects: SlackEffects,
    ) -> None:
        self._client = client
        self._requests = requests
        self._experts = experts
        self._effects = effects

    async def open_answer_modal(self, click: Click) -> None:
        """Answer button: open the modal at once (its trigger lasts 3 s) if this user may."""
        request = await self._answerable(click)
        if request is None:
            return
        try:
            await self._client.views_open(
                trigger_id=click.trigger_id, view=blocks.answer_modal(request)
            )
        except SlackApiError as exc:
            log.warning("Could not open the answer modal for %s: %s", request.id, slack_error(exc))
            await self._tell(click, "Slack didn't let me open the answer form; please try again.")

    async def decline(self, click: Click) -> None:
        """Decline button: settle the request without an answer; the agent carries on."""
        request = await self._answerable(click)
        if request is None:
            return
        result = await self._requests.claim(
            request.id, team=click.team, user=click.user, answer="", status=Status.DECLINED
        )
        if not result.accepted:
            await self._tell(
                click, blocks.settled_explanation(result.outcome, result.by, result.at)
            )

    async def submit_answer(
        self, *, team: str, user: str, view: dict[str, Any], channel: str
    ) -> dict[str, Any] | None:
        """The modal was submitted. Returns the modal response, None to close the modal."""
        request_id = text_at(view, "private_metadata") or ""
        answer = text_at(view, "state", "values", ids.ANSWER_BLOCK, ids.ANSWER_INPUT, "value") or ""
        if not answer.strip():
            return blocks.answer_errors(BLANK_ANSWER)
        try:
            request = await self._requests.get(request_id)
            if request is None or request.team != team:
                return blocks.answer_not_taken_view(
                    blocks.settled_explanation("missing", "", None), answer
                )
            refusal = await self._refusal(user)
            if refusal:
                await self._effects.ephemeral(channel=channel, user=user, text=refusal)
                return blocks.answer_not_taken_view(refusal, answer)
            result = await self._requests.claim(
                request.id, team=team, user=user, answer=answer, view_id=text_at(view, "id") or ""
            )
        except RedisError as exc:
            log.error("Could not record an answer to %s: %s", request_id, exc)
            return blocks.answer_errors(STORAGE_DOWN)
        if result.accepted:
            log.info("Request %s answered by %s", request.id, user)
            return None
        return blocks.answer_not_taken_view(
            blocks.settled_explanation(result.outcome, result.by, result.at), answer
        )

    async def _answerable(self, click: Click) -> ExpertRequest | None:
        """The request, if it is pending and this user may act on it; else tell them why."""
        try:
            request = await self._requests.get(click.request_id)
        except RedisError as exc:
            log.error("Could not read request %s: %s", click.request_id, exc)
            await self._tell(click, "I can't reach my storage right now; please try again.")
            return None
        if request is None or request.team != click.team:
            await self._tell(click, blocks.settled_explanation("missing", "", None))
            return None
        if not request.is_pending:
            await self._tell(
                click,
                blocks.settled_explanation(
                    request.status, request.answered_by, request.answered_at
                ),
            )
            return None
        refusal = await self._refusal(click.user)
        if refusal:
            await self._tell(click, refusal)
            return None
        return request

    async def _refusal(self, user: str) -> str | None:
        try:
            if await self._experts.is_expert(user):
                return None
        except ExpertCheckUnavailable:
            return CANNOT_VERIFY
        return NOT_AN_EXPERT.format(rule=self._experts.rule)

    async def _tell(self, click: Click, text: str) -> None:
        await self._effects.ephemeral(channel=click.channel, user=click.user, text=text)
