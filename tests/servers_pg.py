"""Servers the tests start themselves, on 127.0.0.1 and a free port, in a temporary folder, stopped at the end.

PostgreSQL with pgvector comes from the `pgserver` wheel (PostgreSQL 16, pgvector 0.6): its `initdb`, `pg_ctl` and
`postgres` under `<site-packages>/pgserver/pginstall/bin`. PostgreSQL refuses to run as root, so as root they run
as `nobody` (`runuser`), in a folder made for it outside pytest's own temporary folder (which only root may
enter). One server per session (`postgres_server`); each test gets a schema of its own (`pg_schema`).

A server that cannot be started skips or fails its tests as `tests/servers.py` says.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import free_port, server_unavailable

SERVER_START_SECONDS = 60.0
SERVER_STOP_SECONDS = 30.0


# -- PostgreSQL + pgvector -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL with the vector extension in its `postgres` database (trust auth, user postgres)."""

    dsn: str
    port: int
    folder: Path
    pid: int


def pgserver_binaries() -> Path | None:
    """`<site-packages>/pgserver/pginstall/bin`, found without importing pgserver (its import has side effects)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return folder if (folder / "pg_ctl").is_file() else None


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "nobody", "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(
        _as_server_user(command), capture_output=True, text=True, timeout=SERVER_START_SECONDS, check=False
    )
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log is not None and log.is_file() else ""
        server_unavailable(f"PostgreSQL: {what} failed ({done.returncode}): {done.stderr.strip()[-2000:]} {tail}")


def _postmaster_pid(data: Path) -> int:
    return int((data / "postmaster.pid").read_text().split("\n", 1)[0])


def _stop_postgres(binaries: Path, data: Path, pid: int) -> None:
    """`pg_ctl stop -m fast`, and if the postmaster is still there after that, SIGKILL by its pid."""
    subprocess.run(
        _as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "stop", "-m", "fast", "-w", "-t", "20"]),
        capture_output=True,
        timeout=SERVER_STOP_SECONDS,
        check=False,
    )
    deadline = time.monotonic() + SERVER_STOP_SECONDS
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the pid's exit (not waiting for a condition to come true by itself)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """PostgreSQL + pgvector from the pgserver wheel for the whole session, stopped (and its folder removed)
    at the end."""
    binaries = pgserver_binaries()
    if binaries is None:
        server_unavailable("the pgserver wheel (PostgreSQL + pgvector for the tests) is not installed")
    folder = Path(tempfile.mkdtemp(prefix="ragscope-pg-"))
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
    data, log = folder / "data", folder / "server.log"
    pid = 0
    try:
        _run([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"], "initdb")
        port = free_port()
        options = (
            f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        start = [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "start", "-w", "-t", "60"]
        _run(start, "pg_ctl start", log)
        pid = _postmaster_pid(data)
        dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        yield PostgresServer(dsn, port, folder, pid)
    finally:
        if pid:
            _stop_postgres(binaries, data, pid)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_schema(postgres_server: PostgresServer) -> str:
    """A schema name no other test uses (the store makes it on first write)."""
    return f"t_{uuid.uuid4().hex[:16]}"
