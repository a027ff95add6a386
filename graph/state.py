"""The agent's state: the conversation, one message list per thread."""

from typing import Annotated

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict


class AgentState(TypedDict):
    # add_messages appends, and replaces a message that comes again with the same id:
    # re-sending a turn's input after a crash does not duplicate it.
    messages: Annotated[list[AnyMessage], add_messages]
