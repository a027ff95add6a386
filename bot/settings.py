"""Configuration, read once from the environment into a typed, immutable object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
# Turns mostly wait on the model; past a few processes (about 120 MB each) more cores add
# little for a default. WORKER_PROCESSES overrides it.
MAX_DEFAULT_WORKERS = 4


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    slack_bot_token: SecretStr
    expert_channel: str
    openai_api_key: SecretStr
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    port: int = 3000
    host: str = "0.0.0.0"
    expert_users: frozenset[str] = field(default_factory=frozenset)
    expert_usergroup: str | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    redis_url: str | None = None
    data_dir: Path = Path("data")
    # Tuning; the defaults suit production.
    worker_concurrency: int = 32
    worker_processes: int = 1
    lease_seconds: float = 15.0
    model_timeout_seconds: float = 60.0
    model_max_retries: int = 2
    turn_timeout_seconds: float = 180.0
    context_tokens: int = 64_000
    conversation_ttl_days: float = 30.0
    log_level: str = "INFO"

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    def secrets(self) -> list[str]:
        """Every secret value, for log redaction."""
        values = [self.slack_bot_token, self.openai_api_key]
        values += [s for s in (self.slack_app_token, self.slack_signing_secret) if s]
        return [s.get_secret_value() for s in values if s.get_secret_value()]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        reader = _EnvReader(env)
        app_token = reader.secret("SLACK_APP_TOKEN")
        settings = cls(
            slack_bot_token=reader.required_secret("SLACK_BOT_TOKEN", "the bot token (xoxb-...)"),
            slack_app_token=app_token,
            slack_signing_secret=(
                reader.secret("SLACK_SIGNING_SECRET")
                if app_token
                else reader.required_secret(
                    "SLACK_SIGNING_SECRET",
                    "needed in HTTP mode; set SLACK_APP_TOKEN instead for Socket Mode",
                )
            ),
            slack_api_url=_with_trailing_slash(
                reader.text("SLACK_API_URL") or DEFAULT_SLACK_API_URL
            ),
            port=reader.integer("PORT", 3000, minimum=0),
            host=reader.text("HOST") or "0.0.0.0",
            expert_channel=reader.required_text(
                "EXPERT_CHANNEL", "the ID of the channel that receives expert requests"
            ),
            expert_users=frozenset(
                u.strip() for u in (reader.text("EXPERT_USERS") or "").split(",") if u.strip()
            ),
            expert_usergroup=reader.text("EXPERT_USERGROUP"),
            openai_api_key=reader.required_secret("OPENAI_API_KEY", "the model's API key"),
            openai_base_url=reader.text("OPENAI_BASE_URL"),
            openai_model=reader.text("OPENAI_MODEL") or "gpt-4o-mini",
            redis_url=reader.text("REDIS_URL"),
            data_dir=Path(reader.text("DATA_DIR") or "data"),
            worker_concurrency=reader.integer("WORKER_CONCURRENCY", 32, minimum=1),
            worker_processes=reader.integer(
                "WORKER_PROCESSES", min(available_cores(), MAX_DEFAULT_WORKERS), minimum=0
            ),
            lease_seconds=reader.number("LEASE_SECONDS", 15.0, minimum=1.0),
            model_timeout_seconds=reader.number("MODEL_TIMEOUT_SECONDS", 60.0, minimum=0.1),
            model_max_retries=reader.integer("MODEL_MAX_RETRIES", 2, minimum=0),
            turn_timeout_seconds=reader.number("TURN_TIMEOUT_SECONDS", 180.0, minimum=0.1),
            context_tokens=reader.integer("CONTEXT_TOKENS", 64_000, minimum=1_000),
            conversation_ttl_days=reader.number("CONVERSATION_TTL_DAYS", 30.0, minimum=0.00001),
            log_level=(reader.text("LOG_LEVEL") or "INFO").upper(),
        )
        return settings


def available_cores() -> int:
    """Cores this process may run on (a container's limit, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _with_trailing_slash(url: str) -> str:
    # slack_sdk joins method names onto base_url with urljoin: without the slash, the last
    # path segment would be replaced.
    return url if url.endswith("/") else url + "/"


class _EnvReader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def required_text(self, name: str, what: str) -> str:
        value = self.text(name)
        if value is None:
            raise ConfigError(f"{name} is not set: {what}.")
        return value

    def secret(self, name: str) -> SecretStr | None:
        value = self.text(name)
        return SecretStr(value) if value else None

    def required_secret(self, name: str, what: str) -> SecretStr:
        return SecretStr(self.required_text(name, what))

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, not {raw!r}.") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, not {value}.")
        return value

    def number(self, name: str, default: float, *, minimum: float) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, not {raw!r}.") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, not {value}.")
        return value
