"""The bot's own settings: `BotConfig`, built from the `[bot]` table of config.toml and checked.

The engine's `load_config` accepts the `[bot]` section without reading it (it keeps the table raw in
`Config.surface_tables`); `bot_config(config)` builds `BotConfig` from it with the engine's section parser
(`rag_engine.config.section`: unknown names and wrong types are errors, every setting has a default) and
checks the values the bot depends on. Errors are `ConfigError`s with the setting's name, like the engine's.

Not here: the engine's settings (`rag_engine.config`), the token itself (only the name of the environment
variable that holds it; reading it is `bot.app`'s).
"""

from __future__ import annotations

from dataclasses import dataclass

from rag_engine.config import Config, section
from rag_engine.errors import ConfigError

SECTION = "bot"


@dataclass(frozen=True)
class BotConfig:
    # The name of the environment variable holding the token; the token itself never appears in config or logs.
    token_env: str = "DISCORD_TOKEN"
    # Direct messages to the bot; off by default (no channel, no domain, no moderation).
    allow_dms: bool = False
    # Channel ids (as strings) the bot answers in; empty = every channel it can see.
    allowed_channels: tuple[str, ...] = ()
    # Members with Manage Server, or with one of these roles, may upload files and reindex. An entry of digits
    # only is a role id (survives renaming), anything else a role name (exact, case-sensitive).
    knowledge_roles: tuple[str, ...] = ("Knowledge Editor",)
    max_upload_bytes: int = 5_000_000
    # Per user: a burst of this many questions, then one more every cooldown_seconds.
    cooldown_burst: int = 3
    cooldown_seconds: float = 10.0
    # The generation queue's bounds: jobs (waiting or running) per user and in total. A question over either
    # bound is refused at once with an estimate of when to try again, instead of waiting past Discord's
    # 15-minute interaction token.
    max_queued_per_user: int = 2
    max_queue_length: int = 20
    # A streamed answer edits its message at most this often (Discord rate-limits edits).
    edit_interval_seconds: float = 1.0
    sources_per_page: int = 4
    # A guild's default domain, as "guild_id=domain" entries; channels may switch with /domain.
    guild_domains: tuple[str, ...] = ()


def bot_config(config: Config) -> BotConfig:
    """The `[bot]` table of `config`'s file as a checked `BotConfig` (no table: the defaults)."""
    settings = section(BotConfig, config.surface_tables, SECTION)
    validate(settings)
    return settings


def validate(bot: BotConfig) -> None:
    """Raise `ConfigError` naming the first setting out of its range."""
    if bot.cooldown_burst < 1 or bot.cooldown_seconds < 0 or bot.edit_interval_seconds < 0:
        raise ConfigError("bot.cooldown_burst must be >= 1; cooldown_seconds and edit_interval_seconds >= 0")
    if bot.sources_per_page < 1 or bot.max_upload_bytes < 1:
        raise ConfigError("bot.sources_per_page and bot.max_upload_bytes must be at least 1")
    if bot.max_queued_per_user < 1 or bot.max_queue_length < bot.max_queued_per_user:
        raise ConfigError("bot.max_queued_per_user must be at least 1 and bot.max_queue_length at least as large")
    for entry in bot.guild_domains:
        guild, _, domain = entry.partition("=")
        if not guild.strip().isdigit() or not domain.strip():
            raise ConfigError(f'bot.guild_domains entries look like "123456789=history", not {entry!r}')
