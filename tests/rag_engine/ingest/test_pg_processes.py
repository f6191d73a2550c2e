"""Processes on the pgvector store (a real PostgreSQL): a reader process never sees half of any of 50 updates
made while it reads, and an indexer killed (SIGKILL) inside its update transaction loses nothing.

The children are `tests/rag_engine/ingest/pg.py`. No test sleeps on a guess: each waits for a line from its
child, for the child's exit, or polls PostgreSQL's own view of the sessions with a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
from psycopg import sql

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.ingest.pg_store import DOMAINS_TABLE
from tests.conftest import REPO, write
from tests.fakes import EchoGenerator, HashingEmbedder
from tests.rag_engine.ingest.pg import (
    DSN_ENV,
    LEDGER,
    child_command,
    ledger_text,
    pgvector_config,
    reader_config,
)
from tests.rag_engine.ingest.test_incremental import edit
from tests.servers_pg import PostgresServer

EDITS = 50
CHILD_SECONDS = 60.0
T = TypeVar("T")


@pytest.fixture
def pg(config: Config, postgres_server: PostgresServer, pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv(DSN_ENV, postgres_server.dsn)  # the children inherit it
    return pgvector_config(config, pg_schema)


def engine_on(config: Config) -> Engine:
    model = HashingEmbedder()
    return Engine(config, embedder=lambda: model, generator=EchoGenerator)


def child(command: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def poll(condition: Callable[[], T | None], what: str, seconds: float = CHILD_SECONDS) -> T:
    """The first non-None value of `condition`, asked again until `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while (value := condition()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
    return value


def test_a_reader_process_never_sees_half_an_update(pg: Config, knowledge_dir: Path, tmp_path: Path) -> None:
    ledger = write(knowledge_dir / "ledger" / LEDGER, ledger_text(0))
    writer = engine_on(pg)
    assert writer.index("ledger").passages == 2
    reader = child(child_command("reader", reader_config(pg, pg.index.schema, tmp_path), "ledger", str(EDITS)))
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == "ready", reader.communicate(timeout=CHILD_SECONDS)
        for number in range(1, EDITS + 1):  # each edit replaces both passages: one transaction
            edit(ledger, ledger_text(number))
            update = writer.index("ledger")
            assert (update.changed, update.dropped, update.passages) == (1, 2, 2)
        out, err = reader.communicate(timeout=CHILD_SECONDS)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    assert reader.returncode == 0, err
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["bad"] == []
    assert seen["seen"][0] == 0 and seen["seen"][-1] == EDITS and seen["seen"] == sorted(seen["seen"])
    assert len(seen["seen"]) >= 3, seen  # it read while the edits went on, not only before and after
    print(f"\nreader: {seen['reads']} reads, {len(seen['seen'])} of {EDITS + 1} versions seen, none half")


def table_state(server: PostgresServer, schema: str, domain: str) -> tuple[object, ...]:
    """(version, revision, passage ids) of a domain as the table holds it."""
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        row = conn.execute(
            sql.SQL("SELECT version, revision FROM {} WHERE domain = %s").format(sql.Identifier(schema, DOMAINS_TABLE)),
            (domain,),
        ).fetchone()
        ids = conn.execute(
            sql.SQL("SELECT id FROM {} WHERE domain = %s").format(sql.Identifier(schema, "passages")), (domain,)
        ).fetchall()
    assert row is not None
    return (*row, frozenset(i for (i,) in ids))


def blocked_writer(server: PostgresServer, process: subprocess.Popen[str]) -> int | None:
    """The pid of the indexer's session once it waits on the domains table's lock having written already."""
    assert process.poll() is None, process.communicate()
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'ragscope' AND wait_event_type = 'Lock' "
            "AND backend_xid IS NOT NULL AND query LIKE %s",
            (f"%{DOMAINS_TABLE}%",),
        ).fetchone()
    return int(row[0]) if row is not None else None


def session_gone(server: PostgresServer, pid: int) -> bool | None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return True if found is None else None


def test_an_indexer_killed_mid_update_loses_nothing(
    pg: Config, knowledge_dir: Path, tmp_path: Path, postgres_server: PostgresServer
) -> None:
    folder = knowledge_dir / "archive"
    files = [write(folder / f"note-{n:02d}.md", f"Archive note {n}: the heron count was {n}.\n") for n in range(30)]
    engine_on(pg).index("archive")
    before = table_state(postgres_server, pg.index.schema, "archive")
    for n, path in enumerate(files[:10]):
        edit(path, f"Archive note {n}: the heron count was revised to {100 + n}.\n")
    for path in files[25:]:
        path.unlink()
    for n in range(5):
        write(folder / f"new-{n}.md", f"New note {n}: the otter count was {200 + n}.\n")

    # The indexer's transaction deletes and inserts its passages, then waits for this lock to write the domain
    # row: it is killed right there, mid-transaction.
    with psycopg.connect(postgres_server.dsn) as holder:
        domains = sql.Identifier(pg.index.schema, DOMAINS_TABLE)
        holder.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(domains))
        indexer = child(child_command("indexer", pg, "archive"))
        try:
            session = poll(lambda: blocked_writer(postgres_server, indexer), "the indexer to block mid-update")
            os.kill(indexer.pid, signal.SIGKILL)
            indexer.wait(CHILD_SECONDS)
        finally:
            if indexer.poll() is None:
                indexer.kill()
                indexer.wait()
        holder.rollback()
    assert indexer.returncode == -signal.SIGKILL
    poll(lambda: session_gone(postgres_server, session), "the killed indexer's session to end")

    assert table_state(postgres_server, pg.index.schema, "archive") == before  # the old state, whole
    reader = engine_on(reader_config(pg, pg.index.schema, tmp_path))
    assert reader.domain_stats("archive").version == 1 and len(reader.domain_stats("archive").files) == 30

    update = engine_on(pg).index("archive")  # the next sync completes it, from the embedding cache
    assert (update.added, update.changed, update.removed, update.version) == (5, 10, 5, 2), update.to_dict()
    assert update.embedded == 0 and update.reused == 15
    stats = reader.domain_stats("archive")
    assert stats.version == 2 and len(stats.files) == 30 and stats.passages == 30
    texts = [hit.passage.text for hit in reader.retrieve("heron count revised to 103", "archive", 3)]
    assert any("revised to 103" in text for text in texts)
