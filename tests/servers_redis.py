"""Redis for the tests, on 127.0.0.1 and a free port, in a temporary folder, stopped by its pid.

`redis_server` (session): Debian's `/usr/bin/redis-server` with no persistence (`--save "" --appendonly no`),
for the queue between the bot's gateway and its answer workers (tests/bot/test_redis_*.py). Each test takes
its own key prefix (`bot.queue_name`), so one server serves the whole session.

A server that cannot be started skips or fails its tests as `tests/servers.py` says.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import free_port, server_unavailable, stop_process

REDIS_SERVER = Path("/usr/bin/redis-server")
START_SECONDS = 10.0
STOP_SECONDS = 5.0


@dataclass(frozen=True)
class RedisServer:
    port: int
    pid: int
    folder: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def _redis_ready(port: int, process: subprocess.Popen[bytes]) -> bool:
    """True once the server answers PING; raises if it exited."""
    if process.poll() is not None:
        raise RuntimeError(f"redis-server exited with {process.returncode}")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _start_redis(binary: str, folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = (folder / "redis.log").open("wb")
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*command, "--dir", str(folder)], cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_SECONDS
    try:
        while not _redis_ready(port, process):
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer within {START_SECONDS:g} s")
            time.sleep(0.02)  # polling the readiness condition, with a deadline
    except RuntimeError:
        stop_process(process)
        raise
    return process, port


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis for the session (started once, stopped by pid at the end)."""
    binary = str(REDIS_SERVER) if REDIS_SERVER.is_file() else shutil.which("redis-server")
    if binary is None:
        server_unavailable(f"{REDIS_SERVER} is not installed (apt-get install -y redis-server)")
        return
    folder = tmp_path_factory.mktemp("redis")
    started: tuple[subprocess.Popen[bytes], int] | None = None
    failures = []
    for _ in range(3):  # a free port can be taken between the probe and the server's bind
        try:
            started = _start_redis(binary, folder)
            break
        except RuntimeError as exc:
            failures.append(str(exc))
    if started is None:
        server_unavailable(f"redis-server could not be started: {'; '.join(failures)}")
        return
    process, port = started
    try:
        yield RedisServer(port, process.pid, folder)
    finally:
        stop_process(process)
