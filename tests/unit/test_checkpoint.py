"""The compact checkpointer against a real Redis: the agent behaves exactly as with
LangGraph's in-memory saver, and the history is stored once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from graph import build_graph
from graph.checkpoint import CompactRedisSaver


class ScriptedModel(GenericFakeChatModel):
    def bind_tools(self, tools, **kwargs):
        return self


def ask(*queries: str) -> AIMessage:
    calls = [{"name": "human_assistance", "args": {"query": q}, "id": f"call_{q}"} for q in queries]
    return AIMessage(content="", tool_calls=calls)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.from_url(redis_url)
    yield connection
    await connection.aclose()


async def _conversation(saver) -> list[tuple[str, str]]:
    """A thread with a plain turn, two parallel interrupts resumed one at a time, and a
    last turn; returns what the state holds at the end."""
    replies = iter([AIMessage("hello"), ask("a", "b"), AIMessage("thanks"), AIMessage("bye")])
    graph = build_graph(ScriptedModel(messages=replies), saver)
    config = {"configurable": {"thread_id": "T:C:1"}}
    await graph.ainvoke({"messages": [HumanMessage("hi", id="h1")]}, config, durability="sync")
    out = await graph.ainvoke(
        {"messages": [HumanMessage("ask", id="h2")]}, config, durability="sync"
    )
    interrupts = {i.value["query"]: i.id for i in out["__interrupt__"]}
    state = await graph.aget_state(config)
    assert {i.id for i in state.interrupts} == set(interrupts.values())
    out = await graph.ainvoke(Command(resume={interrupts["b"]: "B"}), config, durability="sync")
    assert [i.value["query"] for i in out["__interrupt__"]] == ["a"]
    out = await graph.ainvoke(Command(resume={interrupts["a"]: "A"}), config, durability="sync")
    assert "__interrupt__" not in out
    await graph.ainvoke({"messages": [HumanMessage("later", id="h3")]}, config, durability="sync")
    state = await graph.aget_state(config)
    assert not state.interrupts and not state.next
    return [
        (m.type, m.content if isinstance(m.content, str) else "") for m in state.values["messages"]
    ]


async def test_same_conversation_as_the_in_memory_saver(client):
    expected = await _conversation(InMemorySaver())
    assert await _conversation(CompactRedisSaver(client)) == expected
    assert ("tool", "A") in expected and ("tool", "B") in expected


async def test_a_fresh_process_reads_what_another_wrote(client):
    writer = CompactRedisSaver(client)
    replies = iter([ask("q"), AIMessage("done")])
    graph = build_graph(ScriptedModel(messages=replies), writer)
    config = {"configurable": {"thread_id": "T:C:2"}}
    out = await graph.ainvoke({"messages": [HumanMessage("x", id="h")]}, config, durability="sync")
    [interrupt] = out["__interrupt__"]
    # Another process: empty cache, same Redis.
    other = build_graph(
        ScriptedModel(messages=iter([AIMessage("done")])), CompactRedisSaver(client)
    )
    state = await other.aget_state(config)
    assert [i.id for i in state.interrupts] == [interrupt.id]
    out = await other.ainvoke(Command(resume={interrupt.id: "yes"}), config, durability="sync")
    assert [m.content for m in out["messages"]][-2:] == ["yes", "done"]
    # And back in the first process, whose cache is now stale.
    state = await graph.aget_state(config)
    assert [m.content for m in state.values["messages"]][-1] == "done"


async def test_history_is_stored_once_and_grows_linearly(client):
    saver = CompactRedisSaver(client)
    graph = build_graph(ScriptedModel(messages=(AIMessage("r" * 400) for _ in range(200))), saver)
    config = {"configurable": {"thread_id": "T:C:3"}}
    sizes = []
    for turn in range(40):
        await graph.ainvoke(
            {"messages": [HumanMessage("q" * 100, id=f"h{turn}")]}, config, durability="sync"
        )
        if turn + 1 in (10, 20, 40):
            sizes.append(
                sum([await client.memory_usage(k, samples=0) or 0 for k in await client.keys("*")])
            )
    assert await client.llen(saver.thread_keys("T:C:3")[2]) == 80  # each message once
    per_turn_early, per_turn_late = (sizes[1] - sizes[0]) / 10, (sizes[2] - sizes[1]) / 20
    assert per_turn_late < per_turn_early * 1.3  # linear, not quadratic
    assert sizes[2] < 40 * 500 * 2  # well under twice the 500 characters each turn carries


async def test_removed_messages_rewrite_the_list(client):
    saver = CompactRedisSaver(client)
    graph = build_graph(ScriptedModel(messages=iter([AIMessage("one"), AIMessage("two")])), saver)
    config = {"configurable": {"thread_id": "T:C:4"}}
    out = await graph.ainvoke({"messages": [HumanMessage("a", id="a")]}, config, durability="sync")
    first_ai = out["messages"][1].id
    await graph.aupdate_state(config, {"messages": [RemoveMessage(id=first_ai)]})
    await graph.ainvoke({"messages": [HumanMessage("b", id="b")]}, config, durability="sync")
    fresh = build_graph(ScriptedModel(messages=iter([])), CompactRedisSaver(client))
    contents = [m.content for m in (await fresh.aget_state(config)).values["messages"]]
    assert contents == ["a", "b", "two"]


async def test_ttl_expires_idle_threads_and_pin_keeps_waiting_ones(client):
    saver = CompactRedisSaver(client, ttl_seconds=1)
    graph = build_graph(ScriptedModel(messages=iter([AIMessage("x"), ask("q")])), saver)
    idle = {"configurable": {"thread_id": "T:C:idle"}}
    waiting = {"configurable": {"thread_id": "T:C:waiting"}}
    await graph.ainvoke({"messages": [HumanMessage("a", id="a")]}, idle, durability="sync")
    await graph.ainvoke({"messages": [HumanMessage("b", id="b")]}, waiting, durability="sync")
    await saver.apin("T:C:waiting")
    for key in saver.thread_keys("T:C:idle"):
        assert await client.ttl(key) in (-2, 1)
    await asyncio.sleep(2.1)
    fresh = CompactRedisSaver(client)
    assert await fresh.aget_tuple(idle) is None
    kept = await fresh.aget_tuple(waiting)
    assert kept is not None and kept.pending_writes  # the interrupt is still there
