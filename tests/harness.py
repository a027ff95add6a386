"""Running the bot for tests: in this process (fast) or as `python -m bot` (for crashes,
restarts and several processes), always on its real HTTP endpoint or Socket Mode."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bot.server import serve
from bot.settings import Settings
from tests.standins.chat_model import ChatModelStandIn
from tests.standins.slack import SlackStandIn

EXPERT_CHANNEL = "C0EXPERTS"
EXPERTS = ("U0EXPERT1", "U0EXPERT2")
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def eventually(
    check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Wait until `check()` returns something truthy (awaiting it if needed); return it."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if isinstance(last, Awaitable):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(interval)


def bot_env(
    slack: SlackStandIn,
    model: ChatModelStandIn,
    redis_url: str,
    *,
    port: int,
    mode: str = "http",
    **extra: str,
) -> dict[str, str]:
    env = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_API_URL": slack.api_url,
        "EXPERT_CHANNEL": EXPERT_CHANNEL,
        "OPENAI_API_KEY": model.api_key,
        "OPENAI_BASE_URL": model.base_url,
        "OPENAI_MODEL": "stand-in-model",
        "REDIS_URL": redis_url,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LEASE_SECONDS": "3",
        "MODEL_TIMEOUT_SECONDS": "5",
        "MODEL_MAX_RETRIES": "2",
        "TURN_TIMEOUT_SECONDS": "20",
        "LOG_LEVEL": "INFO",
    }
    if mode == "socket":
        env["SLACK_APP_TOKEN"] = slack.app_token
    else:
        env["SLACK_SIGNING_SECRET"] = slack.signing_secret
    env.update(extra)
    return env


async def wait_healthy(port: int, timeout: float = 30.0, process: Any = None) -> None:
    """Until /health says Redis is reachable and every worker process reads the stream."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"bot exited with {process.returncode} before it was ready")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"http://127.0.0.1:{port}/health") as response:
                    body = await response.json()
                    workers = body.get("worker_processes")
                    if response.status == 200 and (
                        workers is None or workers["ready"] == workers["configured"]
                    ):
                        return
            await asyncio.sleep(0.05)
    raise AssertionError("bot did not become healthy")


class InProcessBot:
    """`bot.server.serve` as a task on the test's event loop."""

    def __init__(self, env: dict[str, str]) -> None:
        # Turns run in this process too: the same worker code, without process start-up.
        self.env = {"WORKER_PROCESSES": "0", **env}
        self.settings = Settings.from_env(self.env)
        self.port = self.settings.port
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    async def start(self) -> InProcessBot:
        assert self.settings.redis_url
        self._task = asyncio.create_task(
            serve(self.settings, self.settings.redis_url, stop=self._stop)
        )
        ready = asyncio.create_task(wait_healthy(self.port))
        done, _ = await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            ready.cancel()
            self._task.result()
            raise AssertionError("bot stopped during start-up")
        await ready
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 15)


class BotProcess:
    """`python -m bot` in its own process, its log kept in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.port = int(env["PORT"])
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def spawn(self) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_"))}
        env.update(self.env)
        env["PYTHONUNBUFFERED"] = "1"
        log = self.log_path.open("ab")
        # A session of its own: the test's clean-up can end the bot with all its workers.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        return self.process

    async def start(self) -> BotProcess:
        self.spawn()
        await wait_healthy(self.port, process=self.process)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """`kill -9` of the bot's process: no clean-up of any kind. (Its worker processes are
        told by Linux, and hand their turns back.)"""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def kill_all(self) -> None:
        """SIGKILL to the bot and all its processes at once, as a container stop does."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)

    async def terminate(self, timeout: float = 15.0) -> float:
        """SIGTERM; returns how long the process took to exit."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        while self.process.poll() is None:
            if time.monotonic() - started > timeout:
                self.process.kill()
                raise AssertionError("bot ignored SIGTERM")
            await asyncio.sleep(0.05)
        return time.monotonic() - started
