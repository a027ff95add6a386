"""The request record in a real Redis: created once per interrupt, claimed once."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from bot import keys
from bot.domain import ThreadRef
from bot.requests import RequestStore, Status

THREAD = ThreadRef("T1", "C1", "1700000000.000100")


async def _store(redis_url: str) -> tuple[RequestStore, aioredis.Redis]:
    client = aioredis.from_url(redis_url, decode_responses=True)
    return RequestStore(client), client


async def test_ensure_is_idempotent_per_interrupt(redis_url):
    store, client = await _store(redis_url)
    first = await store.ensure(THREAD, interrupt_id="i1", question="Q?", asker="U1", asker_ts="1")
    again = await store.ensure(THREAD, interrupt_id="i1", question="Q?", asker="U1", asker_ts="1")
    other = await store.ensure(THREAD, interrupt_id="i2", question="R?", asker="U1", asker_ts="1")
    assert first.id == again.id != other.id
    assert first.status is Status.PENDING and first.question == "Q?"
    assert len(first.id) >= 20  # opaque, not guessable
    assert await store.pending_count() == 2
    await client.aclose()


async def test_concurrent_claims_accept_exactly_one(redis_url):
    store, client = await _store(redis_url)
    request = await store.ensure(THREAD, interrupt_id="i1", question="Q", asker="U1", asker_ts="1")
    results = await asyncio.gather(
        *[
            store.claim(request.id, team="T1", user=f"U{n}", answer=f"a{n}", view_id=f"V{n}")
            for n in range(20)
        ]
    )
    accepted = [r for r in results if r.accepted]
    assert len(accepted) == 1
    winner = accepted[0].by
    assert all(r.outcome == "answered" and r.by == winner for r in results if not r.accepted)
    stored = await store.get(request.id)
    assert stored.status is Status.ANSWERED and stored.answered_by == winner
    assert stored.answer == "a" + winner[1:]
    # Exactly one wake-up for the thread's worker.
    assert await client.xlen(keys.INTAKE_STREAM) == 1
    assert await store.pending_count() == 0
    await client.aclose()


async def test_same_submission_again_is_a_repeat_not_a_conflict(redis_url):
    store, client = await _store(redis_url)
    request = await store.ensure(THREAD, interrupt_id="i1", question="Q", asker="U1", asker_ts="1")
    first = await store.claim(request.id, team="T1", user="U9", answer="a", view_id="V1")
    again = await store.claim(request.id, team="T1", user="U9", answer="a", view_id="V1")
    assert first.outcome == "ok" and again.outcome == "repeat"
    assert await client.xlen(keys.INTAKE_STREAM) == 1
    await client.aclose()


async def test_claim_checks_workspace_and_existence(redis_url):
    store, client = await _store(redis_url)
    request = await store.ensure(THREAD, interrupt_id="i1", question="Q", asker="U1", asker_ts="1")
    assert (await store.claim(request.id, team="T-OTHER", user="U9", answer="a")).outcome == (
        "missing"
    )
    assert (await store.claim("no-such-id", team="T1", user="U9", answer="a")).outcome == "missing"
    assert (await store.claim("", team="T1", user="U9", answer="a")).outcome == "missing"
    assert (await store.get(request.id)).status is Status.PENDING
    await client.aclose()


async def test_full_texts_are_kept_whole(redis_url):
    store, client = await _store(redis_url)
    question, answer = "q" * 20_000, "a" * 2_999
    request = await store.ensure(
        THREAD, interrupt_id="i", question=question, asker="U", asker_ts="1"
    )
    await store.claim(request.id, team="T1", user="U9", answer=answer)
    stored = await store.get(request.id)
    assert stored.question == question and stored.resume_value == answer
    await client.aclose()
