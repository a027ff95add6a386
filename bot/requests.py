"""Expert requests: the record in Redis, written before any Slack message points to it, and
its atomic claim, so two experts answering at once resume the graph once."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

import redis.asyncio as aioredis

from bot import keys
from bot.domain import ThreadRef


class Status(StrEnum):
    PENDING = "pending"
    ANSWERED = "answered"
    DECLINED = "declined"


DECLINED_RESUME_VALUE = (
    "The expert declined to answer this question. Tell the user, and help as well as you can "
    "without an expert."
)


@dataclass(frozen=True)
class ExpertRequest:
    id: str
    team: str
    thread_id: str
    channel: str
    root: str
    interrupt_id: str
    question: str
    asker: str
    asker_ts: str
    created_at: float
    status: Status
    answer: str = ""
    answered_by: str = ""
    answered_at: float | None = None
    expert_ts: str = ""  # the request message in the expert channel
    thread_link: str = ""  # permalink to the asker's message
    asked_note_ts: str = ""  # the "I've asked an expert" note in the asker's thread
    resumed: bool = False
    shown_answered: bool = False

    @property
    def thread(self) -> ThreadRef:
        return ThreadRef(self.team, self.channel, self.root)

    @property
    def is_pending(self) -> bool:
        return self.status is Status.PENDING

    @property
    def resume_value(self) -> str:
        return self.answer if self.status is Status.ANSWERED else DECLINED_RESUME_VALUE

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> ExpertRequest:
        return cls(
            id=data["id"],
            team=data["team"],
            thread_id=data["thread_id"],
            channel=data["channel"],
            root=data["root"],
            interrupt_id=data["interrupt_id"],
            question=data["question"],
            asker=data.get("asker", ""),
            asker_ts=data.get("asker_ts", ""),
            created_at=float(data.get("created_at") or 0),
            status=Status(data["status"]),
            answer=data.get("answer", ""),
            answered_by=data.get("answered_by", ""),
            answered_at=float(data["answered_at"]) if data.get("answered_at") else None,
            expert_ts=data.get("expert_ts", ""),
            thread_link=data.get("thread_link", ""),
            asked_note_ts=data.get("asked_note_ts", ""),
            resumed=data.get("resumed") == "1",
            shown_answered=data.get("shown_answered") == "1",
        )


@dataclass(frozen=True)
class ClaimResult:
    """What became of an answer: taken, or why not (and who was first)."""

    outcome: str  # "ok", "repeat" (same submission again), "missing", "answered", "declined"
    by: str = ""
    at: float | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome in ("ok", "repeat")


# KEYS: thread_requests, pending set, new request key. ARGV: interrupt id, new id, fields...
_CREATE = """
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then return existing end
redis.call('HSET', KEYS[3], unpack(ARGV, 3))
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[2])
return ARGV[2]
"""

# KEYS: request, thread, intake stream, pending set.
# ARGV: team, status, answer, user, now, view id, thread id
_CLAIM = """
local rec = redis.call('HMGET', KEYS[1], 'status', 'team', 'answered_by', 'answered_at',
                       'view_id')
if not rec[1] or rec[2] ~= ARGV[1] then return {'missing'} end
if rec[1] ~= 'pending' then
  if ARGV[6] ~= '' and rec[5] == ARGV[6] and rec[3] == ARGV[4] then
    return {'repeat', rec[3], rec[4]}
  end
  return {rec[1], rec[3] or '', rec[4] or ''}
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'answer', ARGV[3], 'answered_by', ARGV[4],
           'answered_at', ARGV[5], 'view_id', ARGV[6])
redis.call('SREM', KEYS[4], redis.call('HGET', KEYS[1], 'id'))
redis.call('HINCRBY', KEYS[2], 'version', 1)
redis.call('XADD', KEYS[3], '*', 'thread', ARGV[7])
return {'ok', ARGV[4], ARGV[5]}
"""


def new_request_id() -> str:
    # Opaque and unguessable: the id travels in button values and modal metadata.
    return secrets.token_urlsafe(16)


class RequestStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._create = redis.register_script(_CREATE)
        self._claim = redis.register_script(_CLAIM)

    async def ensure(
        self,
        thread: ThreadRef,
        *,
        interrupt_id: str,
        question: str,
        asker: str,
        asker_ts: str,
    ) -> ExpertRequest:
        """The request for this interrupt, created on first sight. Safe to call again."""
        new_id = new_request_id()
        fields = {
            "id": new_id,
            "team": thread.team,
            "thread_id": thread.id,
            "channel": thread.channel,
            "root": thread.root,
            "interrupt_id": interrupt_id,
            "question": question,
            "asker": asker,
            "asker_ts": asker_ts,
            "created_at": f"{time.time():.3f}",
            "status": Status.PENDING.value,
        }
        args: list[str] = [interrupt_id, new_id]
        for name, value in fields.items():
            args += [name, value]
        request_id = await self._create(
            keys=[keys.thread_requests(thread.id), keys.PENDING_REQUESTS, keys.request(new_id)],
            args=args,
        )
        found = await self.get(_text(request_id))
        if found is None:  # pragma: no cover - the script just wrote it
            raise RuntimeError(f"request {request_id!r} vanished after creation")
        return found

    async def get(self, request_id: str) -> ExpertRequest | None:
        if not request_id or len(request_id) > 64:
            return None
        data = await self._redis.hgetall(keys.request(request_id))
        if not data:
            return None
        return ExpertRequest.from_hash({_text(k): _text(v) for k, v in data.items()})

    async def update(self, request_id: str, **fields: str) -> None:
        await self._redis.hset(keys.request(request_id), mapping=fields)

    async def claim(
        self,
        request_id: str,
        *,
        team: str,
        user: str,
        answer: str,
        status: Status = Status.ANSWERED,
        view_id: str = "",
    ) -> ClaimResult:
        """Take the request for this expert's answer, unless someone was first.

        Atomic with the wake-up of the thread's worker: an accepted answer is never lost.
        """
        request = await self.get(request_id)
        if request is None or request.team != team:
            return ClaimResult("missing")
        result = await self._claim(
            keys=[
                keys.request(request_id),
                keys.thread(request.thread_id),
                keys.INTAKE_STREAM,
                keys.PENDING_REQUESTS,
            ],
            args=[
                team,
                status.value,
                answer,
                user,
                f"{time.time():.3f}",
                view_id,
                request.thread_id,
            ],
        )
        outcome, *rest = [_text(x) for x in result]
        by = rest[0] if rest else ""
        at = float(rest[1]) if len(rest) > 1 and rest[1] else None
        return ClaimResult(outcome, by, at)

    async def finish(self, request_id: str, ttl_seconds: int) -> None:
        """The graph has the answer: the record may now expire with its conversation."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.request(request_id), "resumed", "1")
            pipe.expire(keys.request(request_id), ttl_seconds)
            await pipe.execute()

    async def pending_count(self) -> int:
        return int(await self._redis.scard(keys.PENDING_REQUESTS))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
