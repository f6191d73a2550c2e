"""Starting the bot: configuration, the token from the environment, logging that never shows the token.

`main()` is `python -m bot` and `ragscope run`: it loads the engine's configuration and the bot's own
settings from the same file (`[bot]`, `bot.config`). Without a token it exits with a one-line hint (the
terminal interface `ragscope chat` needs none). The bot itself is `client.py`; its commands are in `cogs/`.

`--role` splits the bot over processes (README "Run it on several machines"): `all` (the default) is the one
process that connects to Discord and answers; `gateway` connects to Discord and puts the questions on the
Redis queue (`bot.queue_backend = "redis"`, `bot.redis_queue`); `worker` answers them (`bot.worker`), needs no
token, and runs anywhere the Redis is reachable. `all` with the Redis backend is a gateway with one worker
inside it. The Redis URL comes from the environment (`bot.redis_url_env`) and, like the token, is redacted
from every log line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from bot.config import BotConfig, bot_config
from rag_engine.config import Config, load_config
from rag_engine.engine import Engine
from rag_engine.errors import RagError

log = logging.getLogger("bot")

EXIT_USAGE = 2
ROLES = ("all", "gateway", "worker")


REDACTED = "[redacted]"
# Formats tracebacks the way logging.Formatter does by default, so a redacted one reads like any other.
_TRACEBACKS = logging.Formatter()


class RedactSecret(logging.Filter):
    """Replaces a secret wherever it would appear in a log record: the message, its arguments, the traceback
    of an attached exception (its text often quotes a request, a header, a URL) and the stack info.

    The record leaves with the secret-free text already formatted: `msg` with `args` merged in, the traceback
    in `exc_text` (which formatters use instead of formatting `exc_info` again) and `exc_info` dropped, so no
    later handler or formatter can render the original exception again.
    """

    def __init__(self, secret: str) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secret:
            return True
        try:
            message = record.getMessage()
        except Exception:  # bad %-arguments: logging would report it itself; show the parts, redacted
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = self._redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        record.exc_info = None
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        return True

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, REDACTED)


def configure_logging(verbose: bool, *secrets: str) -> None:
    """One stderr handler on the root logger, with the token and the Redis URL (`secrets`) redacted from
    everything it writes."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # On the handler, not a logger: a logger's filters only see records logged on that very logger, while
    # every record that reaches the root handler (discord.py's included) passes the handler's filters.
    for secret in secrets:
        handler.addFilter(RedactSecret(secret))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("bot").setLevel(logging.INFO)
    logging.getLogger("discord").setLevel(logging.INFO if verbose else logging.WARNING)


def read_token(settings: BotConfig) -> str | None:
    token = os.environ.get(settings.token_env, "").strip()
    return token or None


def read_redis_url(settings: BotConfig) -> str | None:
    url = os.environ.get(settings.redis_url_env, "").strip()
    return url or None


def url_secrets(url: str) -> list[str]:
    """What must never be logged of a URL: all of it, and its password alone (an error may quote just that)."""
    password = urlsplit(url).password
    return [url, password] if password else [url]


async def run_bot(
    config: Config, settings: BotConfig, token: str, redis_url: str | None = None, *, with_worker: bool = False
) -> None:
    """The Discord side: role `all`, or a gateway to the Redis queue when `redis_url` is given, with an answer
    worker in a thread of this process over the same engine if `with_worker` (role `all` over Redis)."""
    from bot.client import make_bot

    engine = Engine(config)
    answers = None
    if redis_url is not None:
        from bot.redis_queue import redis_job_queue
        from bot.worker import redis_worker, serve

        alongside = partial(serve, redis_worker(redis_url, settings, engine)) if with_worker else None
        answers = redis_job_queue(redis_url, settings, alongside)
    async with make_bot(config, engine, settings, answers=answers) as bot:
        await bot.start(token)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Run the ragscope Discord bot.")
    parser.add_argument("--config", type=Path, help="config file (default: $RAGSCOPE_CONFIG or ./config.toml)")
    parser.add_argument("--knowledge", type=Path, metavar="DIR", help="knowledge folder (one subfolder per domain)")
    parser.add_argument("--data-dir", type=Path, metavar="DIR", help="where indexes and bot state are stored")
    parser.add_argument(
        "--role",
        choices=ROLES,
        default="all",
        help="all: one process (default); gateway: Discord, questions onto Redis; worker: answers from Redis",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (discord.py included)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config).with_paths(knowledge_dir=args.knowledge, data_dir=args.data_dir)
        settings = bot_config(config)
    except RagError as exc:
        print(f"ragscope bot: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    redis_url = read_redis_url(settings) if settings.queue_backend == "redis" else None
    problem = _role_problem(args.role, settings, redis_url)
    if problem is not None:
        print(f"ragscope bot: {problem}", file=sys.stderr)
        return EXIT_USAGE
    secrets = url_secrets(redis_url) if redis_url else []
    if args.role == "worker":
        assert redis_url is not None
        configure_logging(args.verbose, *secrets)
        return _run(lambda: _serve_worker(config, settings, redis_url))
    token = read_token(settings)
    if token is None:
        print(
            f"ragscope bot: set the {settings.token_env} environment variable to your bot's token "
            "(see README, 'Run it on your server'), or try the same commands in the terminal: ragscope chat",
            file=sys.stderr,
        )
        return EXIT_USAGE
    configure_logging(args.verbose, token, *secrets)
    with_worker = args.role == "all" and redis_url is not None
    return _run(lambda: asyncio.run(run_bot(config, settings, token, redis_url, with_worker=with_worker)))


def _role_problem(role: str, settings: BotConfig, redis_url: str | None) -> str | None:
    """Why this role cannot start with these settings (a one-line hint), or None."""
    if role != "all" and settings.queue_backend != "redis":
        return f'--role {role} needs the Redis queue: set queue_backend = "redis" in [bot] (README, several machines)'
    if settings.queue_backend == "redis" and redis_url is None:
        return f"set the {settings.redis_url_env} environment variable to the Redis URL (redis://host:6379/0)"
    return None


def _serve_worker(config: Config, settings: BotConfig, redis_url: str) -> None:
    from bot.worker import run_worker

    run_worker(config, settings, redis_url)


def _run(start: Callable[[], None]) -> int:
    """Run a role to its end: 0, or 2 with the reason for an engine error (a bad model path, say)."""
    try:
        start()
    except KeyboardInterrupt:
        return 0
    except RagError as exc:
        log.debug("bot stopped", exc_info=True)
        print(f"ragscope bot: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0
