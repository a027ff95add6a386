"""Benchmark: this bot against the straightforward one, on the same stand-ins and Redis."""
