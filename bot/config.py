"""The bot's own settings: `BotConfig`, built from the `[bot]` table of config.toml and checked.

The engine's `load_config` accepts the `[bot]` section without reading it (it keeps the table raw in
`Config.surface_tables`); `bot_config(config)` builds `BotConfig` from it with the engine's section parser
(`rag_engine.config.section`: unknown names and wrong types are errors, every setting has a default) and
checks the values the bot depends on. Errors are `ConfigError`s with the setting's name, like the engine's.

The settings for more than one process (`queue_backend`, Redis, shards) are `[bot]` settings too, checked by
`validate_scale`: the engine's config accepts only the `[bot]` surface section.

Not here: the engine's settings (`rag_engine.config`), the token and the Redis URL themselves (only the names
of the environment variables that hold them; reading them is `bot.app`'s).
"""

from __future__ import annotations

from dataclasses import dataclass

from rag_engine.config import Config, section
from rag_engine.errors import ConfigError

SECTION = "bot"
QUEUE_BACKENDS = ("local", "redis")


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
    # Past one process (`ragscope run --role gateway|worker`): "local" answers in this process's generation
    # queue; "redis" puts the questions on a Redis stream that answer workers, on any machine, take.
    queue_backend: str = "local"
    # The name of the environment variable holding the Redis URL (it may hold a password: never in config or logs).
    redis_url_env: str = "RAGSCOPE_REDIS_URL"
    # Every Redis key starts with this, so several bots can share one Redis.
    queue_name: str = "ragscope"
    # A question whose worker has not reported for this long (it died) is taken again by another worker.
    visibility_timeout_seconds: float = 30.0
    # Discord shards: 0 = one connection, not sharded (the default); n = an AutoShardedClient over n shards, of
    # which this process runs `shard_ids` (empty: all n), so several gateway processes can split them.
    shard_count: int = 0
    shard_ids: tuple[int, ...] = ()


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
    validate_scale(bot)
    for entry in bot.guild_domains:
        guild, _, domain = entry.partition("=")
        if not guild.strip().isdigit() or not domain.strip():
            raise ConfigError(f'bot.guild_domains entries look like "123456789=history", not {entry!r}')


def validate_scale(bot: BotConfig) -> None:
    """The settings for more than one process: the queue's backend and Redis, the shards."""
    if bot.queue_backend not in QUEUE_BACKENDS:
        raise ConfigError(f"bot.queue_backend must be one of {', '.join(QUEUE_BACKENDS)}, not {bot.queue_backend!r}")
    if bot.visibility_timeout_seconds <= 0 or not bot.queue_name.strip() or not bot.redis_url_env.strip():
        raise ConfigError("bot.visibility_timeout_seconds must be > 0; bot.queue_name and bot.redis_url_env non-empty")
    if bot.shard_count < 0:
        raise ConfigError("bot.shard_count must be 0 (not sharded) or the number of shards")
    if bot.shard_ids and not bot.shard_count:
        raise ConfigError("bot.shard_ids needs bot.shard_count (the total number of shards)")
    for shard in bot.shard_ids:
        if type(shard) is not int or not 0 <= shard < bot.shard_count:
            raise ConfigError(f"bot.shard_ids entries are shard numbers 0..{bot.shard_count - 1}, not {shard!r}")
    if len(set(bot.shard_ids)) != len(bot.shard_ids):
        raise ConfigError("bot.shard_ids lists a shard twice")
