"""Wires the agent: a model node and a tool node, checkpointed by the saver it is handed."""

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, SystemMessage, ToolMessage
from langchain_core.messages.utils import count_tokens_approximately, trim_messages
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send

from graph.prompts import SYSTEM_PROMPT
from graph.state import AgentState
from graph.tools import TOOLS

# What the model is shown of a long thread: the newest messages that fit this many tokens
# (counted approximately, no tokenizer download). 40 ordinary turns fit with room to spare.
DEFAULT_CONTEXT_TOKENS = 64_000


def build_graph(
    model: BaseChatModel,
    checkpointer: BaseCheckpointSaver | None,
    *,
    tools: Sequence[BaseTool] = TOOLS,
    context_tokens: int = DEFAULT_CONTEXT_TOKENS,
    system_prompt: str = SYSTEM_PROMPT,
) -> CompiledStateGraph:
    """Build the agent graph from a chat model and a checkpointer."""
    tools_by_name = {t.name: t for t in tools}
    bound_model = model.bind_tools(list(tools))

    async def agent(state: AgentState) -> dict[str, Any]:
        visible = trim_messages(
            state["messages"],
            max_tokens=context_tokens,
            token_counter=count_tokens_approximately,
            strategy="last",
            start_on="human",
            include_system=False,
            allow_partial=False,
        )
        reply = await bound_model.ainvoke([SystemMessage(system_prompt), *visible])
        return {"messages": [reply]}

    async def run_tool(tool_call: dict[str, Any]) -> dict[str, Any]:
        # One task per tool call (see route_tools): parallel calls to human_assistance
        # interrupt side by side, and each is resumed by its own interrupt id.
        tool = tools_by_name.get(tool_call["name"])
        if tool is None:
            return {"messages": [_tool_error(tool_call, f"Unknown tool {tool_call['name']!r}.")]}
        try:
            result = await tool.ainvoke({**tool_call, "type": "tool_call"})
        except GraphBubbleUp:
            raise  # interrupt(): let LangGraph pause the graph
        except Exception as exc:
            result = _tool_error(tool_call, f"Tool error: {exc}")
        return {"messages": [result]}

    def route_tools(state: AgentState) -> list[Send] | str:
        last = state["messages"][-1]
        if isinstance(last, AIMessage) and last.tool_calls:
            return [Send("tools", call) for call in last.tool_calls]
        return END

    builder = StateGraph(AgentState)
    builder.add_node("agent", agent)
    builder.add_node("tools", run_tool)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route_tools, ["tools", END])
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=checkpointer)


def _tool_error(tool_call: dict[str, Any], text: str) -> ToolMessage:
    """A tool call's failure, told to the model so it can carry on."""
    return ToolMessage(
        content=text, tool_call_id=tool_call["id"], name=tool_call["name"], status="error"
    )
