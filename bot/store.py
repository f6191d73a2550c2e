"""The bot's SQLite state, surviving restarts: which domain each channel asks about, and the answers in flight.

Domains: a channel's own choice (`/domain`) wins, then its guild's default from `bot.guild_domains` (`BotConfig`),
else None (= search every domain). The defaults come from config and are never written to the database, so
changing the config takes effect at the next start.

Answers in flight: every queued job records where its message is (a channel and message id, or an interaction
token and when it expires) and removes the record when it is done. What a restart leaves behind are messages
stuck at "In the queue" or half streamed; the next start reads them (`in_flight`), finishes them with a note
and forgets them. The tokens stay at most their 15 minutes of use in the file.

One connection shared across threads behind a lock: the cogs may call from the event loop or from worker
threads; every call is short.

Not here: checking that a domain exists (the engine does that when asked), the `/domain` command itself, the
editing of interrupted messages (`bot.client`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from rag_engine.errors import ConfigError

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS channel_domains (
    channel_id INTEGER PRIMARY KEY,
    domain TEXT NOT NULL
)
""",
    """
CREATE TABLE IF NOT EXISTS answers_in_flight (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id INTEGER,
    message_id INTEGER,
    application_id INTEGER,
    interaction_token TEXT,
    token_expires_at REAL
)
""",
)


@dataclass(frozen=True)
class InFlight:
    """Where a queued answer's message is, enough to edit it from a new process.

    A reply to a mention: `channel_id` and `message_id` (the bot's own message, editable forever). An
    interaction: `application_id`, `interaction_token` and `token_expires_at` (epoch seconds); its message is
    the interaction's original response.
    """

    channel_id: int | None = None
    message_id: int | None = None
    application_id: int | None = None
    interaction_token: str | None = None
    token_expires_at: float | None = None


def parse_guild_domains(entries: Sequence[str]) -> dict[int, str]:
    """`["123=history", "456 = zoology"]` → `{123: "history", 456: "zoology"}`; a later entry for the same
    guild wins. Raises ConfigError for anything else (config validation already refuses such entries)."""
    defaults: dict[int, str] = {}
    for entry in entries:
        guild, sep, domain = entry.partition("=")
        guild, domain = guild.strip(), domain.strip()
        if not sep or not guild.isdigit() or not domain:
            raise ConfigError(f'bot.guild_domains entries look like "123456789=history", not {entry!r}')
        defaults[int(guild)] = domain
    return defaults


class DomainStore:
    """channel id → domain in a SQLite file; guild defaults from config as the fallback."""

    def __init__(self, path: Path, guild_defaults: Mapping[int, str] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._defaults = dict(guild_defaults or {})
        self._lock = threading.Lock()
        # check_same_thread=False: the lock, not the thread, guards the connection.
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._closed = False
        with self._lock:
            # Write-ahead log: one fsync per commit instead of several, and a reader (a backup, a second
            # process) never blocks a write. synchronous stays FULL: a committed choice survives a power cut.
            self._db.execute("PRAGMA journal_mode=WAL")
            with self._db:
                for statement in _SCHEMA:
                    self._db.execute(statement)

    def get(self, channel_id: int, guild_id: int | None) -> str | None:
        """The channel's domain, else the guild's default, else None (every domain)."""
        with self._lock:
            row = self._db.execute("SELECT domain FROM channel_domains WHERE channel_id = ?", (channel_id,)).fetchone()
        if row is not None:
            return str(row[0])
        return self._defaults.get(guild_id) if guild_id is not None else None

    def set(self, channel_id: int, domain: str | None) -> None:
        """Remember the channel's domain; None forgets it (back to the guild default). One transaction."""
        # `with self._db` commits on success and rolls back on an exception: each set is all or nothing.
        with self._lock, self._db:
            if domain is None:
                self._db.execute("DELETE FROM channel_domains WHERE channel_id = ?", (channel_id,))
            else:
                self._db.execute(
                    "INSERT INTO channel_domains (channel_id, domain) VALUES (?, ?) "
                    "ON CONFLICT(channel_id) DO UPDATE SET domain = excluded.domain",
                    (channel_id, domain),
                )

    def channels(self) -> dict[int, str]:
        """Every channel with its own choice (for status output and tests)."""
        with self._lock:
            rows = self._db.execute("SELECT channel_id, domain FROM channel_domains").fetchall()
        return {int(channel): str(domain) for channel, domain in rows}

    # -- answers in flight ----------------------------------------------------------------------------------
    def add_in_flight(self, where: InFlight) -> int:
        """Record a queued answer's message; returns the record's id (for `remove_in_flight`)."""
        with self._lock, self._db:
            cursor = self._db.execute(
                "INSERT INTO answers_in_flight "
                "(channel_id, message_id, application_id, interaction_token, token_expires_at) VALUES (?, ?, ?, ?, ?)",
                (
                    where.channel_id,
                    where.message_id,
                    where.application_id,
                    where.interaction_token,
                    where.token_expires_at,
                ),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def remove_in_flight(self, record_ids: Iterable[int]) -> None:
        """Forget answers that are done (or were dealt with after a restart). After `close`, does nothing: an
        answer that ends while the bot shuts down stays recorded, for the next start to finish."""
        ids = [(record_id,) for record_id in record_ids]
        with self._lock:
            if self._closed:
                return
            with self._db:
                self._db.executemany("DELETE FROM answers_in_flight WHERE id = ?", ids)

    def in_flight(self) -> dict[int, InFlight]:
        """Every recorded answer by record id, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, channel_id, message_id, application_id, interaction_token, token_expires_at "
                "FROM answers_in_flight ORDER BY id"
            ).fetchall()
        return {int(row[0]): InFlight(*row[1:]) for row in rows}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._db.close()

    def __enter__(self) -> DomainStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
