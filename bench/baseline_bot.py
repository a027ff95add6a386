"""The straightforward bot, written plainly, for the benchmark to compare against.

The LangGraph tutorial's graph (chatbot node, ToolNode, tools_condition, the
`human_assistance` tool) with `AsyncRedisSaver` and `durability="sync"`, in a minimal Bolt
`AsyncApp` that dedupes events by event id and runs each turn after the ack. No tuning either
way. Run: `python -m bench.baseline_bot` with the bot's own environment variables.
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

from aiohttp import web
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.redis.aio import AsyncRedisSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import interrupt
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from typing_extensions import TypedDict


class State(TypedDict):
    messages: Annotated[list, add_messages]


@tool
def human_assistance(query: str) -> str:
    """Request assistance from a human."""
    human_response = interrupt({"query": query})
    return human_response["data"]


def build_graph(checkpointer: AsyncRedisSaver):
    llm = ChatOpenAI(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    llm_with_tools = llm.bind_tools([human_assistance])

    async def chatbot(state: State):
        return {"messages": [await llm_with_tools.ainvoke(state["messages"])]}

    builder = StateGraph(State)
    builder.add_node("chatbot", chatbot)
    builder.add_node("tools", ToolNode(tools=[human_assistance]))
    builder.add_conditional_edges("chatbot", tools_condition)
    builder.add_edge("tools", "chatbot")
    builder.add_edge(START, "chatbot")
    return builder.compile(checkpointer=checkpointer)


async def main() -> None:
    saver = AsyncRedisSaver(redis_url=os.environ["REDIS_URL"])
    await saver.asetup()
    graph = build_graph(saver)
    client = AsyncWebClient(
        token=os.environ["SLACK_BOT_TOKEN"],
        base_url=os.environ.get("SLACK_API_URL", "https://slack.com/api/"),
    )
    app = AsyncApp(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"])
    seen: set[str] = set()

    async def run_turn(body, event, say):
        if body["event_id"] in seen:
            return
        seen.add(body["event_id"])
        thread_ts = event.get("thread_ts") or event["ts"]
        config = {"configurable": {"thread_id": f"{event['channel']}:{thread_ts}"}}
        result = await graph.ainvoke(
            {"messages": [{"role": "user", "content": event["text"]}]}, config, durability="sync"
        )
        await say(text=result["messages"][-1].content, thread_ts=thread_ts)

    @app.event("app_mention")
    async def on_mention(body, event, say):
        await run_turn(body, event, say)

    @app.event("message")
    async def on_message(body, event, say):
        if event.get("thread_ts") and not event.get("subtype") and not event.get("bot_id"):
            await run_turn(body, event, say)

    runner = web.AppRunner(app.web_app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(os.environ.get("PORT", "3000"))).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
