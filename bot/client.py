"""`RagBot`: the discord.py client with its resources injected, its cogs, command sync and the watcher.

The engine and the bot's own settings (`BotConfig`, `bot.config`) are created by the caller and handed in,
so tests can build the bot over fake models and a temporary knowledge folder; the queue, the cooldowns and
the channel domains are made from those settings. Errors of every command reach one boundary: the command
tree is `bot.errors.ReportingTree`. On start it registers its slash commands only
when their definition changed since the last registration (a hash under the data directory), and starts the
knowledge watcher, whose updates wake anyone waiting for a domain to change (an upload waiting to become
searchable). Before it connects, it finishes the answers a previous run left in flight (recorded in the
store by `bot.answering.in_flight`): each such message gets "interrupted by a restart" instead of sitting at
"In the queue" or half streamed forever. Commands themselves live in `bot/cogs/`.

Answers go to `answers` (`bot.job_queue.JobQueue`): this process's generation queue, or, for a gateway, the
Redis queue its answer workers take from. `make_bot` builds the sharded client (`ShardedRagBot`, discord.py's
`AutoShardedBot`) when `bot.shard_count` is set.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import discord
from discord.ext import commands

from bot.config import BotConfig, bot_config
from bot.cooldown import Cooldowns
from bot.errors import ReportingTree
from bot.job_queue import JobQueue, LocalJobQueue
from bot.jobs import GenerationQueue
from bot.knowledge_events import UpdateFeed, start_watching
from bot.store import DomainStore, InFlight, parse_guild_domains
from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.ingest.watcher import KnowledgeWatcher
from rag_engine.records import IndexUpdate

log = logging.getLogger(__name__)

INTERRUPTED_NOTE = "⚠️ Interrupted by a restart of the bot before this answer was finished. Please ask again."
# A recorded interaction whose token expires sooner than this is left alone: the edit would arrive too late.
TOKEN_SAFETY_SECONDS = 5.0

COGS = (
    "bot.cogs.ask",
    "bot.cogs.domain",
    "bot.cogs.knowledge",
    "bot.cogs.pipeline",
    "bot.cogs.lab",
    "bot.cogs.eval",
    "bot.cogs.help",
)


def intents() -> discord.Intents:
    """Guild messages with their content (for mentions), nothing privileged beyond message content."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    wanted.dm_messages = True
    wanted.message_content = True
    return wanted


class RagBot(commands.Bot):
    def __init__(
        self,
        config: Config,
        engine: Engine,
        settings: BotConfig | None = None,
        *,
        watch: bool = True,
        answers: JobQueue | None = None,
        **options: Any,
    ) -> None:
        options.setdefault("guild_ready_timeout", 1.0)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents(),
            # Generated and document text must never ping anyone, whatever it contains.
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            tree_cls=ReportingTree,
            **options,
        )
        self.config = config
        # The [bot] table of the config file unless given (tests pass their own).
        self.settings = settings if settings is not None else bot_config(config)
        self.engine = engine
        self.queue = GenerationQueue(self.settings.max_queued_per_user, self.settings.max_queue_length)
        # Where answers are generated: None = this process's generation queue (`answers`).
        self._answers = answers
        self.cooldowns = Cooldowns(self.settings.cooldown_burst, self.settings.cooldown_seconds)
        self.state_dir = Path(config.paths.data_dir) / "bot"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.domains = DomainStore(self.state_dir / "bot.sqlite3", parse_guild_domains(self.settings.guild_domains))
        self._watch = watch
        self.watcher: KnowledgeWatcher | None = None
        self._feed_task: asyncio.Task[None] | None = None
        self._update_waiters: dict[str, list[asyncio.Future[IndexUpdate]]] = defaultdict(list)

    # -- lifecycle -----------------------------------------------------------------------------------
    async def setup_hook(self) -> None:
        for name in COGS:
            await self.load_extension(name)
        # Logged in, not yet connected: REST works, and no new answer can be recorded before the old ones go.
        await self.finish_interrupted_answers()
        await self.queue.start()
        await self.answers.start()
        await self.sync_commands_if_changed()
        if self._watch:
            self.watcher, feed = await start_watching(self.engine)
            self._feed_task = asyncio.create_task(self._follow(feed), name="ragscope-updates")

    async def close(self) -> None:
        if self._feed_task is not None:
            self._feed_task.cancel()
        if self.watcher is not None:
            await asyncio.to_thread(self.watcher.stop)
        await self.answers.stop()
        await self.queue.stop()
        await super().close()
        self.domains.close()

    @property
    def answers(self) -> JobQueue:
        """Where answers are generated: the one given (Redis, for a gateway), else this process's generation
        queue, whichever `queue` is now (tests swap it for one with a fake clock)."""
        return self._answers if self._answers is not None else LocalJobQueue(self.queue, self.engine)

    async def finish_interrupted_answers(self) -> int:
        """Edit every answer a previous run left in flight to say it was interrupted, then forget them all.
        Returns how many messages were edited; failures (deleted message, expired token) are logged, not raised."""
        leftovers = await asyncio.to_thread(self.domains.in_flight)
        edited = 0
        for where in leftovers.values():
            try:
                edited += await self._mark_interrupted(where)
            except discord.HTTPException as exc:
                log.warning("could not mark an interrupted answer: %s", exc)
        await asyncio.to_thread(self.domains.remove_in_flight, list(leftovers))
        if leftovers:
            log.info("finished %d of %d answers interrupted by the last restart", edited, len(leftovers))
        return edited

    async def _mark_interrupted(self, where: InFlight) -> bool:
        nobody = discord.AllowedMentions.none()
        if where.interaction_token is not None and where.application_id is not None:
            if where.token_expires_at is None or where.token_expires_at - TOKEN_SAFETY_SECONDS <= time.time():
                return False
            webhook = discord.Webhook.partial(where.application_id, where.interaction_token, client=self)
            # "@original" is Discord's name for an interaction's first response in the webhook message routes;
            # discord.py puts the id into the path as given.
            original: Any = "@original"
            await webhook.edit_message(original, content=INTERRUPTED_NOTE, allowed_mentions=nobody)
            return True
        if where.channel_id is not None and where.message_id is not None:
            message = self.get_partial_messageable(where.channel_id).get_partial_message(where.message_id)
            await message.edit(content=INTERRUPTED_NOTE, allowed_mentions=nobody)
            return True
        return False

    async def sync_commands_if_changed(self) -> bool:
        """Register the slash commands with Discord when their definition differs from the last registration."""
        definition = json.dumps([c.to_dict(self.tree) for c in self.tree.get_commands()], sort_keys=True)
        digest = hashlib.sha256(definition.encode()).hexdigest()
        marker = self.state_dir / f"commands-{self.application_id}.sha256"
        if marker.is_file() and marker.read_text().strip() == digest:
            return False
        synced = await self.tree.sync()
        marker.write_text(digest)
        log.info("registered %d slash commands", len(synced))
        return True

    # -- knowledge updates ---------------------------------------------------------------------------
    async def _follow(self, feed: UpdateFeed) -> None:
        async for update in feed:
            waiters, self._update_waiters[update.domain] = self._update_waiters[update.domain], []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(update)

    def next_update(self, domain: str) -> asyncio.Future[IndexUpdate]:
        """A future resolved by the next applied update of `domain` (register before making the change)."""
        waiter: asyncio.Future[IndexUpdate] = asyncio.get_running_loop().create_future()
        self._update_waiters[domain].append(waiter)
        return waiter

    # -- where the bot answers -----------------------------------------------------------------------
    def answers_in(self, channel: object, guild: discord.Guild | None) -> bool:
        if guild is None:
            return self.settings.allow_dms
        allowed = self.settings.allowed_channels
        channel_id = getattr(channel, "id", None)
        return not allowed or str(channel_id) in allowed

    def channel_domain(self, channel_id: int | None, guild_id: int | None) -> str | None:
        """The channel's domain (its own choice, else the server default); None searches every domain."""
        if channel_id is None:
            return None
        domain = self.domains.get(channel_id, guild_id)
        if domain is not None and domain not in self.engine.domains():
            return None  # the folder was removed since: fall back to all domains
        return domain


class ShardedRagBot(RagBot, commands.AutoShardedBot):
    """`RagBot` over discord.py's `AutoShardedClient`: one gateway connection per shard (`bot.shard_count`),
    of which this process runs `bot.shard_ids` (all when empty); Discord routes each guild to one shard."""


def make_bot(config: Config, engine: Engine, settings: BotConfig, **options: Any) -> RagBot:
    """The bot `settings` ask for: sharded when `bot.shard_count` is set, else the plain client (the default)."""
    if not settings.shard_count:
        return RagBot(config, engine, settings, **options)
    shard_ids = list(settings.shard_ids) or None
    return ShardedRagBot(config, engine, settings, shard_count=settings.shard_count, shard_ids=shard_ids, **options)
