"""Configuration: names kept, defaults sensible, errors name the variable."""

from __future__ import annotations

import logging

import pytest

from bot.logs import RedactingFilter
from bot.settings import ConfigError, Settings

BASE = {
    "SLACK_BOT_TOKEN": "xoxb-1-2-abc",
    "SLACK_SIGNING_SECRET": "shh-signing",
    "EXPERT_CHANNEL": "C0EXPERTS",
    "OPENAI_API_KEY": "sk-abcdefghijkl",
}


def test_http_mode_defaults():
    settings = Settings.from_env(BASE)
    assert not settings.socket_mode
    assert settings.port == 3000
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.openai_model == "gpt-4o-mini"
    assert settings.redis_url is None
    assert "xoxb-1-2-abc" not in repr(settings)


def test_socket_mode_needs_no_signing_secret():
    env = {k: v for k, v in BASE.items() if k != "SLACK_SIGNING_SECRET"}
    settings = Settings.from_env(env | {"SLACK_APP_TOKEN": "xapp-1"})
    assert settings.socket_mode


@pytest.mark.parametrize("name", sorted(BASE))
def test_missing_required_setting_is_named(name):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({k: v for k, v in BASE.items() if k != name})


def test_bad_numbers_are_named():
    with pytest.raises(ConfigError, match="PORT"):
        Settings.from_env(BASE | {"PORT": "eighty"})


def test_api_url_gets_its_trailing_slash():
    assert Settings.from_env(BASE | {"SLACK_API_URL": "http://h:1/api"}).slack_api_url == (
        "http://h:1/api/"
    )


def test_expert_users_are_a_set():
    settings = Settings.from_env(BASE | {"EXPERT_USERS": " U1, U2 ,,U3"})
    assert settings.expert_users == {"U1", "U2", "U3"}


def test_log_filter_redacts_tokens(caplog):
    settings = Settings.from_env(BASE)
    redactor = RedactingFilter(settings.secrets())
    record = logging.LogRecord(
        "x",
        logging.INFO,
        __file__,
        1,
        "token %s and key %s and %s",
        ("xoxb-1-2-abc", "sk-abcdefghijkl", "xapp-9-zz"),
        None,
    )
    redactor.filter(record)
    message = record.getMessage()
    assert "xoxb" not in message and "sk-abc" not in message and "xapp-9" not in message
    assert message.count("[redacted]") == 3
