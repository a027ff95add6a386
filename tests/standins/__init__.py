"""Stand-ins for the two outside services, on local ports: Slack and an OpenAI-compatible
chat-completions server. They speak the real wire formats; nothing of the bot is mocked."""
