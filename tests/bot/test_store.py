"""DomainStore: channel choices in SQLite (surviving a reopen), guild defaults from config, thread safety, and
the answers in flight that a restart must finish."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from bot.store import DomainStore, InFlight, parse_guild_domains
from rag_engine.errors import ConfigError

GUILD, OTHER_GUILD = 1000, 2000


def test_channel_choice_then_guild_default_then_all_domains(tmp_path: Path) -> None:
    with DomainStore(tmp_path / "bot.sqlite3", {GUILD: "history"}) as store:
        assert store.get(1, GUILD) == "history"
        assert store.get(1, OTHER_GUILD) is None
        assert store.get(1, None) is None  # a DM: no guild, no default
        store.set(1, "zoology")
        assert store.get(1, GUILD) == "zoology"
        assert store.get(2, GUILD) == "history"
        store.set(1, "geology")  # a second choice replaces the first
        assert store.get(1, GUILD) == "geology"
        store.set(1, None)
        assert store.get(1, GUILD) == "history"
        store.set(1, None)  # clearing twice is fine


def test_choices_survive_reopening_and_defaults_are_not_stored(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "data" / "bot.sqlite3"  # the data folder may not exist yet
    store = DomainStore(path, {GUILD: "history"})
    store.set(11, "zoology")
    store.set(12, "geology")
    store.set(12, None)
    store.close()

    reopened = DomainStore(path)
    try:
        assert reopened.channels() == {11: "zoology"}
        assert reopened.get(11, GUILD) == "zoology"
        assert reopened.get(13, GUILD) is None  # the default came from config, not the file
    finally:
        reopened.close()


def test_large_discord_ids(tmp_path: Path) -> None:
    snowflake = 1_234_567_890_123_456_789  # Discord ids use up to 63 bits
    with DomainStore(tmp_path / "bot.sqlite3", {snowflake: "history"}) as store:
        store.set(snowflake, "zoology")
        assert store.get(snowflake, None) == "zoology"
        assert store.get(snowflake + 1, snowflake) == "history"


def test_concurrent_writers_from_threads(tmp_path: Path) -> None:
    with DomainStore(tmp_path / "bot.sqlite3") as store:
        errors: list[BaseException] = []

        def writer(offset: int) -> None:
            try:
                for channel in range(offset, offset + 10):
                    store.set(channel, f"domain-{channel}")
                    assert store.get(channel, None) == f"domain-{channel}"
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n * 1000,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        assert len(store.channels()) == 6 * 10


def test_every_set_is_committed_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    with DomainStore(path) as store:
        store.set(5, "zoology")
        # A second connection (another process, say) sees the change while the store is still open.
        other = sqlite3.connect(path)
        try:
            assert other.execute("SELECT domain FROM channel_domains WHERE channel_id = 5").fetchone() == ("zoology",)
        finally:
            other.close()


def test_closed_store_refuses_use(tmp_path: Path) -> None:
    store = DomainStore(tmp_path / "bot.sqlite3")
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        store.get(1, None)


def test_parse_guild_domains() -> None:
    assert parse_guild_domains([]) == {}
    assert parse_guild_domains(["123=history", " 456 = zoology ", "123=geology"]) == {123: "geology", 456: "zoology"}


@pytest.mark.parametrize("entry", ["history", "abc=history", "123=", "=history", "12 3=history", ""])
def test_parse_guild_domains_refuses_malformed_entries(entry: str) -> None:
    with pytest.raises(ConfigError, match="guild_domains"):
        parse_guild_domains([entry])


def test_answers_in_flight_survive_a_reopen_until_removed(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    reply = InFlight(channel_id=1_234_567_890_123_456_789, message_id=1_234_567_890_123_456_790)
    interaction = InFlight(
        channel_id=42,
        application_id=1_111_111_111_111_111_111,
        interaction_token="aW50ZXJhY3Rpb24:token",
        token_expires_at=1_700_000_900.5,
    )
    store = DomainStore(path)
    first, second, done = store.add_in_flight(reply), store.add_in_flight(interaction), store.add_in_flight(reply)
    store.remove_in_flight([done])
    store.set(7, "zoology")  # the two tables live side by side
    store.close()

    with DomainStore(path) as reopened:
        assert reopened.in_flight() == {first: reply, second: interaction}
        assert reopened.get(7, None) == "zoology"
        reopened.remove_in_flight([first, second])
        assert reopened.in_flight() == {}
        reopened.remove_in_flight([first])  # already gone: nothing happens


def test_removing_after_close_keeps_the_record_for_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    store = DomainStore(path)
    record = store.add_in_flight(InFlight(channel_id=1, message_id=2))
    store.close()
    store.remove_in_flight([record])  # an answer that ended during shutdown: no error, nothing removed
    with DomainStore(path) as reopened:
        assert list(reopened.in_flight()) == [record]
