"""Starting the bot: the missing-token hint, `ragscope run` handing over, and the token never reaching a log."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from bot.app import RedactSecret, main
from rag_engine.cli import main as ragscope


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
    assert stream.getvalue().count("[token]") == 2
