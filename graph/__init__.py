"""The LangGraph agent. Knows nothing of Slack: it is built from a model and a checkpointer."""

from graph.graph import DEFAULT_CONTEXT_TOKENS, build_graph
from graph.tools import human_assistance

__all__ = ["DEFAULT_CONTEXT_TOKENS", "build_graph", "human_assistance"]
