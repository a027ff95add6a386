"""The agent graph on its own: tools, interrupts, what the model is shown."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from pydantic import Field

from graph import build_graph, human_assistance


class RecordingModel(GenericFakeChatModel):
    """Answers from a script and remembers what it was shown."""

    seen: list[list[Any]] = Field(default_factory=list)

    def bind_tools(self, tools, **kwargs):
        return self

    async def _agenerate(self, messages, *args, **kwargs):
        self.seen.append(list(messages))
        return await super()._agenerate(messages, *args, **kwargs)


def _config(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


async def test_the_tool_is_the_tutorials_human_assistance():
    assert human_assistance.name == "human_assistance"
    assert list(human_assistance.args) == ["query"]


async def test_unknown_tool_is_reported_to_the_model_which_carries_on():
    call = {"name": "no_such_tool", "args": {}, "id": "call_1"}
    model = RecordingModel(messages=iter([AIMessage("", tool_calls=[call]), AIMessage("ok")]))
    graph = build_graph(model, InMemorySaver())
    out = await graph.ainvoke({"messages": [HumanMessage("hi")]}, _config("t1"))
    tool_result = out["messages"][2]
    assert tool_result.status == "error" and "no_such_tool" in tool_result.content
    assert out["messages"][-1].content == "ok"


async def test_the_expert_answer_reaches_the_model_as_the_tool_result():
    call = {"name": "human_assistance", "args": {"query": "Which?"}, "id": "call_1"}
    model = RecordingModel(messages=iter([AIMessage("", tool_calls=[call]), AIMessage("done")]))
    graph = build_graph(model, InMemorySaver())
    out = await graph.ainvoke({"messages": [HumanMessage("hi")]}, _config("t2"))
    [interrupt] = out["__interrupt__"]
    assert interrupt.value == {"query": "Which?"}
    out = await graph.ainvoke(Command(resume={interrupt.id: "That one."}), _config("t2"))
    assert model.seen[-1][-1].content == "That one."
    assert out["messages"][-1].content == "done"


async def test_the_model_sees_the_system_prompt_and_the_newest_turns_within_budget():
    model = RecordingModel(messages=(AIMessage(f"reply {n}") for n in range(100)))
    graph = build_graph(model, InMemorySaver(), context_tokens=300)
    for n in range(10):
        text = f"message {n} " + "word " * 40
        await graph.ainvoke({"messages": [HumanMessage(text)]}, _config("t3"))
    shown = model.seen[-1]
    assert isinstance(shown[0], SystemMessage)
    assert shown[-1].content.startswith("message 9 ")
    assert not any(m.content.startswith("message 0 ") for m in shown)
    assert isinstance(shown[1], HumanMessage)  # never starts with an orphan reply
