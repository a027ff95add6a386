"""The agent's tools."""

from langchain_core.tools import tool
from langgraph.types import interrupt


@tool
def human_assistance(query: str) -> str:
    """Ask a human expert a question and wait for their answer.

    Use this when you need knowledge, judgement or approval that only a person can give.
    The expert's answer is returned as text.
    """
    # interrupt() pauses the graph here; the value given to Command(resume=...) comes back.
    # Nothing may happen before this call: the tool runs again from its start on resume.
    return interrupt({"query": query})


TOOLS = [human_assistance]
