"""Connections to PostgreSQL (psycopg 3): the connection string from the environment, a small pool, and
redaction, so that neither the string nor a password in it ever reaches a log line or an error message.

The connection string is named by config (`index.dsn_env`) and read from the environment on first use, never
stored in the file. Every psycopg error leaves through `PgConnections.connection` as an `IndexStoreError` whose
text has the password and the string itself cut out (`redact`), and with the original error not chained to it
(a chained error's text would be printed beside the traceback). Each connection has the pgvector types
registered. Not here: the tables (`ingest/pg_store.py`) and the searches (`pgvector_index.py`).
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg.conninfo import conninfo_to_dict
from psycopg.types import TypeInfo

from rag_engine.config import IndexConfig
from rag_engine.errors import ConfigError, IndexStoreError

# Idle connections kept for the next borrower (more may be open at once; the rest are closed when returned).
IDLE_CONNECTIONS = 4
CONNECT_TIMEOUT_SECONDS = 10
APPLICATION_NAME = "ragscope"
_REDACTED = "***"
# A password in a URL (`postgresql://user:secret@host/db`) or in key=value form (`password=secret`,
# `password='se cret'`), for strings psycopg cannot even parse.
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*(@)")
_KEY_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)

Connection = psycopg.Connection[tuple[Any, ...]]


def dsn_from_environment(index: IndexConfig) -> str:
    """The connection string in the variable `index.dsn_env` names; a `ConfigError` naming the variable (never
    its value) when it is unset or empty."""
    dsn = os.environ.get(index.dsn_env, "").strip()
    if not dsn:
        raise ConfigError(
            f'index.backend = "pgvector" needs a PostgreSQL connection string in the environment variable '
            f"{index.dsn_env} (e.g. postgresql://ragscope@db-host/ragscope)"
        )
    return dsn


def redact(text: str, dsn: str) -> str:
    """`text` without the connection string and without the password it holds (by value, and by pattern)."""
    secrets = {dsn} if dsn else set()
    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.Error:
        password = None
    if password:
        secrets.add(str(password))
    for secret in sorted(secrets, key=len, reverse=True):  # the whole string first, then the password in it
        text = text.replace(secret, _shown(dsn) if secret == dsn else _REDACTED)
    text = _URL_PASSWORD.sub(rf"\g<1>{_REDACTED}\g<2>", text)
    return _KEY_PASSWORD.sub(rf"\g<1>{_REDACTED}", text)


def _shown(dsn: str) -> str:
    """The connection string as it may be shown: its password replaced."""
    return _KEY_PASSWORD.sub(rf"\g<1>{_REDACTED}", _URL_PASSWORD.sub(rf"\g<1>{_REDACTED}\g<2>", dsn))


class PgConnections:
    """A few psycopg connections (autocommit: every transaction is an explicit `conn.transaction()` block), one
    borrower at a time each: a transaction must never be shared by two threads. `create_extension` makes the
    first connection run `CREATE EXTENSION IF NOT EXISTS vector` (the writer's; a reader only expects it)."""

    def __init__(self, dsn: Callable[[], str], create_extension: bool = False) -> None:
        self._dsn_source = dsn
        self._dsn = ""
        self._create_extension = create_extension
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        # Closes the idle connections when the store that made this pool is dropped (tests make many).
        self._finalizer = weakref.finalize(self, _close_all, self._idle)

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for one unit of work. A psycopg error raised inside becomes an `IndexStoreError` with the
        secrets cut out; a connection left broken or inside a transaction is closed, not reused."""
        try:
            conn = self._take()
        except psycopg.Error as exc:
            raise self.error("cannot connect to PostgreSQL", exc) from None
        try:
            yield conn
        except psycopg.Error as exc:
            raise self.error("PostgreSQL failed", exc) from None
        finally:
            self._give_back(conn)

    def error(self, what: str, exc: BaseException) -> IndexStoreError:
        return IndexStoreError(redact(f"{what}: {type(exc).__name__}: {exc}".strip(), self._dsn))

    def close(self) -> None:
        self._finalizer()

    def _take(self) -> Connection:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed and not conn.broken:
                    return conn
            if not self._dsn:
                self._dsn = self._dsn_source()
        # No server-side prepared statements: a plan cached for a table of another dimension (the tables are
        # made again when the model changes) would outlive it.
        conn = psycopg.connect(
            self._dsn,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name=APPLICATION_NAME,
            prepare_threshold=None,
        )
        try:
            if self._create_extension and TypeInfo.fetch(conn, "vector") is None:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            if TypeInfo.fetch(conn, "vector") is None:
                raise IndexStoreError(
                    "the pgvector extension is not installed in this database: run CREATE EXTENSION vector"
                )
            register_vector(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _give_back(self, conn: Connection) -> None:
        healthy = not conn.closed and not conn.broken
        if healthy and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            with self._lock:
                if len(self._idle) < IDLE_CONNECTIONS:
                    self._idle.append(conn)
                    return
        conn.close()


def _close_all(connections: list[Connection]) -> None:
    while connections:
        connections.pop().close()
