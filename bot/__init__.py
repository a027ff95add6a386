"""The Slack side of the human-in-the-loop bot."""
