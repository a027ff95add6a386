"""Runs a Slack thread's conversation: the graph turns, and what they mean in Slack.

A worker holding the thread's lease calls `step()` until it reports no progress. A step does
one durable thing: run a job (a message to answer, or expert answers to resume with), or post
the expert requests of a paused graph. A job is recorded in the thread's Redis hash before it
runs and cleared after its Slack effects, so a crash at any point is repaired by the next
step, in this process or another, which finds the job still recorded and finishes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, replace
from typing import Any, Protocol

import openai
import redis.asyncio as aioredis
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Interrupt

from bot import blocks, ids, keys
from bot.domain import IncomingMessage, ThreadRef
from bot.formatting import markdown_to_mrkdwn, split_message
from bot.requests import ExpertRequest, RequestStore
from bot.slack_effects import SlackEffects, is_permanent, slack_error

log = logging.getLogger(__name__)

# The model endpoint failing after its own retries, or the turn running out of time.
MODEL_ERRORS = (openai.APIError, TimeoutError)
MAX_JOB_FAILURES = 5  # unexpected errors on one job before the asker is told and it is dropped
HELD_NOTES_LIMIT = 20
# The graph's checkpoint is written when a run ends (or pauses, or fails), not after every
# step: a crash mid-run re-runs the job from the checkpoint before it, which the recorded job
# makes safe, and each turn saves one checkpoint instead of three.
DURABILITY = "exit"
# Turns quicker than this need no "working" sign: the answer itself is the sign.
WORKING_SIGN_DELAY_SECONDS = 1.0

# KEYS: lock, thread, inbox. ARGV: token, pop inbox head ("1"/"0"), waiting ("1"/"0").
_FINISH_JOB = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[2], 'job', 'job_failures')
redis.call('HSET', KEYS[2], 'waiting', ARGV[3])
if ARGV[2] == '1' then redis.call('LPOP', KEYS[3]) end
return 1
"""


class LeaseLost(Exception):
    """Another worker took over the thread; this one must stop without side effects."""


class ExpertPostFailed(Exception):
    """An expert request could not be posted; it is retried, never dropped."""


class Lease(Protocol):
    token: str


class Pinnable(Protocol):
    async def apin(self, thread_id: str) -> None: ...


@dataclass(frozen=True)
class Job:
    kind: str  # "message" or "resume"
    key: str  # effect keys of this job's posts derive from it
    item: IncomingMessage | None = None
    request_ids: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": self.kind,
                "key": self.key,
                "item": self.item.to_json() if self.item else None,
                "requests": list(self.request_ids),
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> Job:
        data = json.loads(raw)
        item = IncomingMessage.from_json(data["item"]) if data.get("item") else None
        return cls(data["kind"], data["key"], item, tuple(data.get("requests") or ()))


@dataclass(frozen=True)
class Outcome:
    """How a graph run ended: paused on interrupts, or with the messages so far."""

    interrupts: tuple[Interrupt, ...]
    messages: list[Any]


def graph_config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


def human_message_id(item: IncomingMessage) -> str:
    return f"slack:{item.id}"


class ConversationService:
    def __init__(
        self,
        *,
        graph: CompiledStateGraph,
        checkpointer: Pinnable,
        redis: aioredis.Redis,
        effects: SlackEffects,
        requests: RequestStore,
        expert_channel: str,
        conversation_ttl_seconds: int,
        turn_timeout_seconds: float,
    ) -> None:
        self._graph = graph
        self._checkpointer = checkpointer
        self._redis = redis
        self._effects = effects
        self._requests = requests
        self._expert_channel = expert_channel
        self._ttl = conversation_ttl_seconds
        self._turn_timeout = turn_timeout_seconds
        self._finish_job_script = redis.register_script(_FINISH_JOB)

    async def step(self, thread_id: str, lease: Lease) -> tuple[bool, str]:
        """Do the thread's next piece of work. Returns whether there was any, and the
        thread's version as it was read (see bot/intake.py): when nothing was done, the
        worker may let go of the thread only if the version is still that."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.thread(thread_id))
            pipe.lindex(keys.inbox(thread_id), 0)
            record, head = await pipe.execute()
        version = str(record.get("version") or "")
        if not record:
            return False, version
        thread = ThreadRef(record["team"], record["channel"], record["root"])
        if record.get("job"):  # left by a run that did not finish: finish it
            await self._run_job(thread, Job.from_json(record["job"]), lease, fresh=False)
            return True, version
        if record.get("waiting") == "1":
            state = await self._graph.aget_state(graph_config(thread_id))
            if state.interrupts:
                progressed = await self._handle_waiting(thread, record, state.interrupts, lease)
                return progressed, version
        if head is None:
            return False, version
        item = IncomingMessage.from_json(head)
        await self._start_and_run(thread, Job("message", item.id, item=item), lease)
        return True, version

    async def record_failure(self, thread_id: str, error: BaseException) -> None:
        """Count an unexpected error on the thread's job; after a few, tell the asker and
        drop the job so one bad message cannot stall its thread for ever."""
        record_key = keys.thread(thread_id)
        failures = await self._redis.hincrby(record_key, "job_failures", 1)
        permanent = is_permanent(error)
        if failures < MAX_JOB_FAILURES and not permanent:
            return
        record = await self._redis.hgetall(record_key)
        if not record.get("job"):
            return
        job = Job.from_json(record["job"])
        log.error(
            "Giving up on job %s in thread %s after %d failures: %r",
            job.key,
            thread_id,
            failures,
            error,
        )
        if not permanent:
            thread = ThreadRef(record["team"], record["channel"], record["root"])
            await self._effects.post_once(
                f"failed:{job.key}",
                channel=thread.channel,
                thread_ts=thread.root,
                text=blocks.TURN_FAILED_NOTE,
            )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(record_key, "job", "job_failures")
            if job.kind == "message":
                pipe.lpop(keys.inbox(thread_id))
            await pipe.execute()

    # ------------------------------------------------------------------ waiting for experts

    async def _handle_waiting(
        self,
        thread: ThreadRef,
        record: dict[str, str],
        interrupts: tuple[Interrupt, ...],
        lease: Lease,
    ) -> bool:
        # A thread waiting for a person never expires: neither its checkpoint, nor the records
        # that map its interrupts to requests.
        await self._checkpointer.apin(thread.id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.persist(keys.thread(thread.id))
            pipe.persist(keys.thread_requests(thread.id))
            await pipe.execute()
        requests = [await self._ensure_request(thread, record, i) for i in interrupts]
        settled = [r for r in requests if not r.is_pending]
        for request in settled:
            await self._show_settled(request)
        if settled:
            request_ids = tuple(sorted(r.id for r in settled))
            job = Job("resume", "resume:" + ",".join(request_ids), request_ids=request_ids)
            await self._start_and_run(thread, job, lease)
            return True
        await self._note_held_messages(thread)
        return False

    async def _ensure_request(
        self, thread: ThreadRef, record: dict[str, str], interrupt: Interrupt
    ) -> ExpertRequest:
        """The request for an interrupt: recorded, then posted to experts, then noted in
        the asker's thread. Each part happens once, whatever is re-run."""
        value = interrupt.value
        question = str(value.get("query", value)) if isinstance(value, dict) else str(value)
        request = await self._requests.ensure(
            thread,
            interrupt_id=interrupt.id,
            question=question,
            asker=record.get("asker", ""),
            asker_ts=record.get("asker_ts", ""),
        )
        try:
            if not request.expert_ts:
                link = await self._effects.permalink(
                    channel=thread.channel, ts=request.asker_ts or thread.root
                )
                request = replace(request, thread_link=link or "")
                text, request_blocks = blocks.expert_request_message(request, link)
                ts = await self._effects.post_once(
                    f"request:{request.id}",
                    channel=self._expert_channel,
                    text=text,
                    blocks=request_blocks,
                )
                await self._requests.update(request.id, expert_ts=ts, thread_link=link or "")
                request = replace(request, expert_ts=ts)
        except Exception as exc:
            log.error(
                "Posting expert request %s for thread %s to %s failed (%s); will retry",
                request.id,
                thread.id,
                self._expert_channel,
                slack_error(exc) or repr(exc),
            )
            raise ExpertPostFailed(request.id) from exc
        if not request.asked_note_ts:
            ts = await self._effects.post_once(
                f"asked:{request.id}",
                channel=thread.channel,
                thread_ts=thread.root,
                text=blocks.asked_expert_note(question),
            )
            await self._requests.update(request.id, asked_note_ts=ts)
        return request

    async def _show_settled(self, request: ExpertRequest) -> None:
        """Turn the request message into a record of who answered, and when."""
        if request.shown_answered or not request.expert_ts:
            return
        text, answered_blocks = blocks.answered_request_message(request, request.thread_link)
        try:
            await self._effects.update(
                channel=self._expert_channel,
                ts=request.expert_ts,
                text=text,
                blocks=answered_blocks,
            )
        except Exception as exc:
            if not is_permanent(exc):
                raise
            log.warning("Could not update request message %s: %s", request.id, slack_error(exc))
        await self._requests.update(request.id, shown_answered="1")

    async def _note_held_messages(self, thread: ThreadRef) -> None:
        """Messages sent while the graph waits stay in the inbox until it resumes (sending
        them to a paused graph would break its history); each gets a note saying so."""
        held = await self._redis.lrange(keys.inbox(thread.id), 0, HELD_NOTES_LIMIT - 1)
        if not held:
            return
        noted_key = keys.held_noted(thread.id)
        noted = await self._redis.smembers(noted_key)
        for raw in held:
            item = IncomingMessage.from_json(raw)
            if item.id in noted:
                continue
            await self._effects.post_once(
                f"held:{item.id}",
                channel=thread.channel,
                thread_ts=thread.root,
                text=blocks.HELD_MESSAGE_NOTE,
            )
            await self._redis.sadd(noted_key, item.id)

    # ------------------------------------------------------------------ jobs

    async def _start_and_run(self, thread: ThreadRef, job: Job, lease: Lease) -> None:
        fields = {"job": job.to_json()}
        if job.item is not None:  # who asked, for the expert requests this turn may make
            fields |= {"asker": job.item.user, "asker_ts": job.item.ts}
        await self._redis.hset(keys.thread(thread.id), mapping=fields)
        await self._run_job(thread, job, lease, fresh=True)

    async def _run_job(self, thread: ThreadRef, job: Job, lease: Lease, *, fresh: bool) -> None:
        """Run a job's graph work and make its Slack posts. `fresh`: recorded just now, so
        nothing of it can have happened yet and the recovery checks are skipped."""
        item = job.item
        if item is not None and not fresh:
            await self._redis.hset(
                keys.thread(thread.id), mapping={"asker": item.user, "asker_ts": item.ts}
            )
        requests = [r for r in [await self._requests.get(i) for i in job.request_ids] if r]
        outcome: Outcome | None = None
        async with self._working_sign(item):
            try:
                async with asyncio.timeout(self._turn_timeout):
                    outcome = await self._advance_graph(thread.id, job, requests, fresh=fresh)
            except MODEL_ERRORS as exc:
                log.warning("Model call failed for thread %s, job %s: %r", thread.id, job.key, exc)
                await self._effects.post_once(
                    f"model-failed:{job.key}",
                    channel=thread.channel,
                    thread_ts=thread.root,
                    text=blocks.MODEL_FAILED_NOTE,
                    fresh=fresh,
                )
            if outcome is not None and not outcome.interrupts:
                await self._post_reply(thread, job, outcome.messages, fresh=fresh)
        for request in requests:
            await self._requests.finish(request.id, self._ttl)
        waiting = outcome is not None and bool(outcome.interrupts)
        done = await self._finish_job_script(
            keys=[keys.lock(thread.id), keys.thread(thread.id), keys.inbox(thread.id)],
            args=[lease.token, "1" if job.kind == "message" else "0", "1" if waiting else "0"],
        )
        if not done:
            raise LeaseLost(thread.id)
        if job.kind == "resume":
            await self._redis.delete(keys.held_noted(thread.id))

    async def _advance_graph(
        self, thread_id: str, job: Job, requests: list[ExpertRequest], *, fresh: bool
    ) -> Outcome:
        """Run the graph for the job; for a job found unfinished, carry on the run a crash
        cut short, or only read how it ended."""
        config = graph_config(thread_id)
        if fresh and job.item is not None:
            return self._outcome(
                await self._graph.ainvoke(
                    {"messages": [self._human(job.item)]}, config, durability=DURABILITY
                )
            )
        state = await self._graph.aget_state(config)
        if job.item is not None:
            known = {m.id for m in state.values.get("messages") or []}
            if human_message_id(job.item) not in known:
                return self._outcome(
                    await self._graph.ainvoke(
                        {"messages": [self._human(job.item)]}, config, durability=DURABILITY
                    )
                )
        else:
            waiting = {i.id for i in state.interrupts}
            resume = {r.interrupt_id: r.resume_value for r in requests if r.interrupt_id in waiting}
            if resume:
                # Each answer resumes its own interrupt; others stay paused.
                return self._outcome(
                    await self._graph.ainvoke(Command(resume=resume), config, durability=DURABILITY)
                )
        if state.next and not state.interrupts:
            return self._outcome(await self._graph.ainvoke(None, config, durability=DURABILITY))
        return Outcome(tuple(state.interrupts), list(state.values.get("messages") or []))

    @staticmethod
    def _human(item: IncomingMessage) -> HumanMessage:
        return HumanMessage(
            content=item.text or "(an empty message)", id=human_message_id(item), name=item.user
        )

    @staticmethod
    def _outcome(output: dict[str, Any]) -> Outcome:
        return Outcome(tuple(output.get("__interrupt__") or ()), list(output.get("messages") or []))

    @contextlib.asynccontextmanager
    async def _working_sign(self, item: IncomingMessage | None):
        """A reaction on the asker's message while a turn takes more than a moment."""
        if item is None:
            yield
            return

        async def show_after_delay() -> None:
            await asyncio.sleep(WORKING_SIGN_DELAY_SECONDS)
            await self._effects.react(
                channel=item.channel, ts=item.ts, name=ids.WORKING_REACTION, on=True
            )

        shown = asyncio.create_task(show_after_delay())
        try:
            yield
        finally:
            if shown.done() and not shown.cancelled() and shown.exception() is None:
                await self._effects.react(
                    channel=item.channel, ts=item.ts, name=ids.WORKING_REACTION, on=False
                )
            else:
                shown.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await shown

    async def _post_reply(
        self, thread: ThreadRef, job: Job, messages: list[Any], *, fresh: bool
    ) -> None:
        last = messages[-1] if messages else None
        if not isinstance(last, AIMessage) or last.tool_calls:
            return
        text = markdown_to_mrkdwn(last.text) or "_(The model gave an empty answer.)_"
        for index, chunk in enumerate(split_message(text)):
            await self._effects.post_once(
                f"reply:{job.key}:{index}",
                channel=thread.channel,
                thread_ts=thread.root,
                text=chunk,
                fresh=fresh,
            )
