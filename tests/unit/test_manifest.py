"""manifest.yml is what an admin creates the app from: Slack's own schema must accept it,
and it must ask for what the bot uses."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "tests" / "data" / "slack-manifest-schema" / "manifest.schema.1.0.0.json"


def _manifest() -> dict:
    return yaml.safe_load((REPO / "manifest.yml").read_text())


def test_manifest_matches_slacks_schema():
    jsonschema.validate(_manifest(), json.loads(SCHEMA.read_text()))


def test_manifest_subscribes_to_what_the_bot_handles():
    manifest = _manifest()
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.channels", "message.groups", "message.im"} <= events
    assert "app_home_opened" in events
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {
        "app_mentions:read",
        "chat:write",
        "channels:history",
        "groups:history",
        "im:history",
        "reactions:write",
        "channels:read",
        "groups:read",
    } <= scopes
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


def test_http_variant_from_the_readme_is_valid_too():
    manifest = _manifest()
    settings = manifest["settings"]
    settings["socket_mode_enabled"] = False
    settings["event_subscriptions"]["request_url"] = "https://bot.example.com/slack/events"
    settings["interactivity"]["request_url"] = "https://bot.example.com/slack/events"
    jsonschema.validate(manifest, json.loads(SCHEMA.read_text()))
