"""Entry point: `python -m bot`."""

from __future__ import annotations

import asyncio
import logging
import sys

from bot.logs import configure_logging
from bot.settings import ConfigError, Settings

log = logging.getLogger("bot")


def main() -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.secrets())
    # Imported after the settings are checked: a configuration error shows in a blink.
    from bot.redis_server import EmbeddedRedis, RedisUnsuitable
    from bot.server import serve

    embedded: EmbeddedRedis | None = None
    try:
        redis_url = settings.redis_url
        if redis_url is None:
            embedded = EmbeddedRedis(settings.data_dir)
            embedded.start()
            redis_url = embedded.url
        asyncio.run(serve(settings, redis_url))
    except RedisUnsuitable as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
