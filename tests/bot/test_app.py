"""Starting the bot: the missing-token hint, `ragscope run` handing over, and the token never reaching a log
(message, arguments or traceback)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import RedactSecret, configure_logging, main, read_token
from bot.config import bot_config
from rag_engine.config import load_config
from ragscope.cli import main as ragscope


def test_without_a_token_it_exits_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[bot]\ntoken_env = "MY_BOT_TOKEN"\n')
    monkeypatch.delenv("MY_BOT_TOKEN", raising=False)
    assert main(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "MY_BOT_TOKEN" in err and "ragscope chat" in err and len(err.strip().splitlines()) == 1


def test_ragscope_run_is_the_bot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    config = tmp_path / "config.toml"
    config.write_text("")
    assert ragscope(["run", "--config", str(config)]) == 2
    assert "DISCORD_TOKEN" in capsys.readouterr().err


def test_a_bad_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[bot]\ncooldown_burst = 0\n")
    assert main(["--config", str(config)]) == 2
    assert "cooldown_burst" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ("max_queued_per_user = 0", "max_queued_per_user"),
        ("max_queue_length = 1", "max_queue_length"),  # below the per-user bound (2)
        ('max_queue_length = "20"', "max_queue_length"),
    ],
)
def test_queue_bounds_are_validated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], settings: str, named: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"[bot]\n{settings}\n")
    assert main(["--config", str(config)]) == 2
    assert named in capsys.readouterr().err


def test_the_shipped_queue_bounds_load() -> None:
    bot = bot_config(load_config(Path(__file__).parents[2] / "config.toml"))
    assert (bot.max_queued_per_user, bot.max_queue_length) == (2, 20)


def test_the_token_is_redacted_from_every_log_record() -> None:
    token = "MTIzNDU2Nzg5.secret.token"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecret(token))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("login with %s failed", token)
        logger.warning(f"header Authorization: Bot {token}")
    finally:
        logger.removeHandler(handler)
    assert token not in stream.getvalue()
    assert stream.getvalue().count("[redacted]") == 2


def failing_request(token: str) -> None:
    try:
        raise ConnectionError(f"GET /gateway?token={token} refused")
    except ConnectionError as exc:
        raise RuntimeError(f"boom {token}") from exc


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """The root logger, its handlers and level restored after the test (configure_logging replaces them)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_logged_exception_carrying_the_token_never_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], root_logging: logging.Logger
) -> None:
    token = "OTg3NjU0MzIx.another.secret"
    config = tmp_path / "config.toml"
    config.write_text('[bot]\ntoken_env = "MY_BOT_TOKEN"\n')
    monkeypatch.setenv("MY_BOT_TOKEN", f"  {token}\n")  # as pasted into a .env file
    secret = read_token(bot_config(load_config(config)))
    assert secret == token
    configure_logging(False, secret)
    # Installed on the root logger's handler, so any library's records pass through it.
    assert any(isinstance(f, RedactSecret) for h in root_logging.handlers for f in h.filters)

    log = logging.getLogger("discord.client")
    try:
        failing_request(token)
    except RuntimeError as exc:
        log.exception("request with %s failed", token)  # the message, its args and the traceback
        log.error("again: %r", exc, exc_info=exc)  # the exception as an argument too
        log.warning("once more", exc_info=(type(exc), exc, exc.__traceback__))
    err = capsys.readouterr().err
    assert token not in err
    # Still a useful log: both exceptions of the chain are there, with the secret replaced.
    assert "RuntimeError: boom [redacted]" in err and "token=[redacted] refused" in err
    assert "request with [redacted] failed" in err and "Traceback" in err
    assert err.count("RuntimeError: boom [redacted]") == 3


def test_the_same_record_through_two_redacting_handlers_stays_redacted() -> None:
    token = "MTExMjIyMzMz.third.secret"
    streams = [io.StringIO(), io.StringIO()]
    logger = logging.getLogger("test.redaction.twice")
    logger.propagate = False
    handlers = [logging.StreamHandler(stream) for stream in streams]
    for handler in handlers:
        handler.addFilter(RedactSecret(token))
        logger.addHandler(handler)
    try:
        try:
            failing_request(token)
        except RuntimeError:
            logger.exception("%s", token)
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
    for stream in streams:
        assert token not in stream.getvalue() and "boom [redacted]" in stream.getvalue()
