"""The bot's settings: the `[bot]` table of config.toml, accepted by the engine's loader and built and checked
by `bot.config.bot_config` with the engine's section parser (the same errors as the engine's sections)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import BotConfig, bot_config
from rag_engine.config import Config, load_config, with_overrides
from rag_engine.errors import ConfigError
from tests.conftest import REPO, write


def test_the_shipped_bot_settings_are_the_defaults() -> None:
    assert bot_config(load_config(REPO / "config.toml")) == BotConfig()
    assert bot_config(Config()) == BotConfig()  # no file, no table: the defaults


def test_the_bot_table_is_read_and_typed(tmp_path: Path) -> None:
    text = '[retrieval]\ntop_k = 3\n[bot]\nallowed_channels = ["42"]\ncooldown_seconds = 2\nallow_dms = true\n'
    config = load_config(write(tmp_path / "c.toml", text))
    settings = bot_config(config)
    assert settings.allowed_channels == ("42",) and settings.allow_dms is True
    assert settings.cooldown_seconds == 2.0 and isinstance(settings.cooldown_seconds, float)
    assert settings.token_env == BotConfig().token_env
    assert config.retrieval.top_k == 3
    # Overriding an engine setting keeps the bot's table.
    assert bot_config(with_overrides(config, ["retrieval.top_k=2"])) == settings


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[bot]\ncooldown_burst = 0\n", "bot.cooldown_burst must be >= 1"),
        ("[bot]\nsources_per_page = 0\n", "bot.sources_per_page and bot.max_upload_bytes"),
        ("[bot]\nmax_queue_length = 1\n", "bot.max_queue_length at least as large"),
        ('[bot]\nguild_domains = ["history"]\n', 'bot.guild_domains entries look like "123456789=history"'),
        ("[bot]\ncooldown = 3\n", "unknown setting bot.cooldown"),
        ('[bot]\nmax_queue_length = "20"\n', "bot.max_queue_length must be int, not str"),
        ('[bot]\nallowed_channels = "42"\n', "bot.allowed_channels must be a list"),
        ("bot = 3\n", r"\[bot\] must be a table"),
    ],
)
def test_bad_bot_settings_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    config = load_config(write(tmp_path / "c.toml", text))  # the engine does not read the bot's table
    with pytest.raises(ConfigError, match=message):
        bot_config(config)


def test_the_bot_settings_are_not_overridden_by_set() -> None:
    with pytest.raises(ConfigError, match=r"SECTION\.KEY=VALUE with a section of loading, .*watch, lab; not"):
        with_overrides(Config(), ["bot.cooldown_burst=1"])
