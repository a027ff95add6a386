"""The bot as admins run it: `python -m bot`, killed, restarted, misconfigured."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.redis_server import EmbeddedRedis
from tests.e2e.helpers import ASKER, CHANNEL, answer, ask_expert, request_messages
from tests.harness import EXPERTS, REPO, BotProcess, bot_env, eventually, free_port
from tests.standins.chat_model import ChatModelStandIn
from tests.standins.slack import BOT_USER, SlackStandIn

_STARTED: list[BotProcess] = []


@pytest.fixture(autouse=True)
def _end_every_bot():
    """Whatever happens in a test, no bot process outlives it."""
    yield
    while _STARTED:
        _STARTED.pop().kill_all()


async def _start(slack: SlackStandIn, env: dict[str, str], log: Path) -> BotProcess:
    process = BotProcess(env, log)
    _STARTED.append(process)
    await process.start()
    slack.delivery = "socket" if "SLACK_APP_TOKEN" in env else "http"
    slack.bot_url = process.events_url
    return process


@pytest.mark.parametrize("mode", ["http", "socket"])
async def test_request_posted_before_kill_9_is_answered_after_restart(
    mode: str, slack: SlackStandIn, model: ChatModelStandIn, redis_url: str, tmp_path: Path
):
    env = bot_env(slack, model, redis_url, port=free_port(), mode=mode)
    first = await _start(slack, env, tmp_path / "first.log")
    if mode == "socket":
        await slack.wait_for_sockets(1)
    root = await ask_expert(slack, "Is the VPN required at home?")
    await eventually(lambda: slack.bot_replies(CHANNEL, root.ts), what="asked note")
    first.kill()

    second = await _start(slack, env, tmp_path / "second.log")
    try:
        if mode == "socket":
            await slack.wait_for_sockets(1)
        [request] = request_messages(slack)
        assert await answer(slack, EXPERTS[0], request, "Yes, always.") is None
        await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2, timeout=20)
        assert slack.bot_replies(CHANNEL, root.ts)[1] == "The expert says: Yes, always."
    finally:
        await second.terminate()


def _run_bot(env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_"))}
    clean.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=REPO,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "missing", ["SLACK_BOT_TOKEN", "EXPERT_CHANNEL", "OPENAI_API_KEY", "SLACK_SIGNING_SECRET"]
)
def test_missing_setting_stops_the_bot_with_a_line_naming_it(missing: str):
    env = {
        "SLACK_BOT_TOKEN": "xoxb-secret-bot-token",
        "SLACK_SIGNING_SECRET": "very-secret-signing",
        "EXPERT_CHANNEL": "C0EXPERTS",
        "OPENAI_API_KEY": "sk-secret-openai-key",
    }
    del env[missing]
    result = _run_bot(env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and missing in lines[0]
    for secret in env.values():
        if secret.startswith(("xoxb", "sk-", "very")):
            assert secret not in result.stderr + result.stdout


def test_redis_without_json_and_search_is_refused(tmp_path: Path):
    server_binary, _modules = EmbeddedRedis.binaries()
    port = free_port()
    plain = subprocess.Popen(
        [
            server_binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(tmp_path),
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        result = _run_bot(
            {
                "SLACK_BOT_TOKEN": "xoxb-secret-bot-token",
                "SLACK_SIGNING_SECRET": "very-secret-signing",
                "EXPERT_CHANNEL": "C0EXPERTS",
                "OPENAI_API_KEY": "sk-secret-openai-key",
                "REDIS_URL": f"redis://127.0.0.1:{port}/0",
                "PORT": str(free_port()),
            }
        )
    finally:
        plain.terminate()
        plain.wait()
    assert result.returncode == 1
    assert "RedisJSON" in result.stderr and "RediSearch" in result.stderr
    assert "Redis 8" in result.stderr and "Redis Stack" in result.stderr
    assert "xoxb-secret" not in result.stderr


async def test_embedded_redis_keeps_conversations_across_restarts(
    slack: SlackStandIn, model: ChatModelStandIn, tmp_path: Path
):
    env = bot_env(slack, model, "", port=free_port(), DATA_DIR=str(tmp_path / "data"))
    del env["REDIS_URL"]
    first = await _start(slack, env, tmp_path / "first.log")
    root = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> my name is Ada")
    await eventually(lambda: slack.bot_replies(CHANNEL, root.ts))
    assert await first.terminate() < 10
    assert (tmp_path / "data" / "redis").is_dir()
    assert not (tmp_path / "data" / "redis" / "redis.sock").exists()  # Redis stopped with it

    second = await _start(slack, env, tmp_path / "second.log")
    try:
        await slack.user_says(ASKER, CHANNEL, "what did I say first?", thread_ts=root.ts)
        await eventually(lambda: len(slack.bot_replies(CHANNEL, root.ts)) == 2)
        assert slack.bot_replies(CHANNEL, root.ts)[1] == "You first said: my name is Ada"
    finally:
        await second.terminate()
    await asyncio.sleep(0)


async def test_no_secret_reaches_the_log_even_at_debug(
    spawn_bot, slack: SlackStandIn, model: ChatModelStandIn
):
    bot = await spawn_bot("socket", LOG_LEVEL="DEBUG")
    root = await slack.user_says(ASKER, CHANNEL, f"<@{BOT_USER}> tell me a secret")
    await eventually(lambda: slack.bot_replies(CHANNEL, root.ts))
    await bot.terminate()
    log = bot.log()
    assert "DEBUG" in log and "apps.connections.open" in log  # it did log, in detail
    for secret in (slack.bot_token, slack.app_token, slack.signing_secret, model.api_key):
        assert secret not in log


async def test_bot_waits_for_an_unreachable_redis_and_still_stops_on_sigterm(
    slack: SlackStandIn, model: ChatModelStandIn, tmp_path: Path
):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    bot = BotProcess(bot_env(slack, model, dead, port=free_port()), tmp_path / "bot.log")
    _STARTED.append(bot)
    bot.spawn()
    await eventually(lambda: "Waiting for Redis" in bot.log(), timeout=20)
    assert bot.process.poll() is None  # still there, waiting
    assert await bot.terminate() < 10
    assert "127.0.0.1" in bot.log() and "xoxb" not in bot.log()
