"""Every Redis key the bot writes besides the checkpointer's, named in one place."""

PREFIX = "hitl"

INTAKE_STREAM = f"{PREFIX}:intake"  # wake-ups: "thread T has work"; consumer group below
INTAKE_GROUP = "workers"
PENDING_REQUESTS = f"{PREFIX}:requests:pending"  # set of request ids waiting for an expert


def seen(delivery_key: str) -> str:
    """Dedupe marker for one Slack message (both its events, and Slack's retries)."""
    return f"{PREFIX}:seen:{delivery_key}"


def thread(thread_id: str) -> str:
    """Hash: the conversation's Slack address, its version counter and its current job."""
    return f"{PREFIX}:thread:{thread_id}"


def inbox(thread_id: str) -> str:
    """List: messages accepted for the thread and not yet answered, oldest first."""
    return f"{PREFIX}:inbox:{thread_id}"


def lock(thread_id: str) -> str:
    """One worker at a time drains a thread, in any process."""
    return f"{PREFIX}:lock:{thread_id}"


def thread_requests(thread_id: str) -> str:
    """Hash: interrupt id -> request id, so a re-run never asks twice."""
    return f"{PREFIX}:thread-requests:{thread_id}"


def request(request_id: str) -> str:
    return f"{PREFIX}:request:{request_id}"


def effect(effect_key: str) -> str:
    """Hash: what a Slack post produced (its ts), or that it was attempted."""
    return f"{PREFIX}:effect:{effect_key}"


def held_noted(thread_id: str) -> str:
    """Set: held messages already told that the thread waits for an expert."""
    return f"{PREFIX}:held-noted:{thread_id}"
