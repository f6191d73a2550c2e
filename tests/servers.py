"""What every test server shares: a free loopback port, and the rule for a server that cannot be started.

Each server lives in a module of its own (`servers_llama.py`: llama.cpp's OpenAI-compatible server;
`servers_pg.py`: PostgreSQL with pgvector; `servers_redis.py`: Redis), runs on 127.0.0.1 from a temporary
folder and is stopped by its pid. A server that truly cannot be started skips its tests with the reason, except
in CI (`CI` set, or `RAGSCOPE_REQUIRE_SERVERS=1`, which `.ci/run` sets), where it fails them instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
from typing import NoReturn

import pytest

STOP_SECONDS = 5.0


def servers_required() -> bool:
    """In CI a server that cannot be started is a failure, not a skip."""
    return bool(os.environ.get("CI")) or os.environ.get("RAGSCOPE_REQUIRE_SERVERS") == "1"


def server_unavailable(reason: str) -> NoReturn:
    """Skip (on a developer's machine) or fail (in CI) the tests that need a server that cannot run."""
    if servers_required():
        pytest.fail(f"{reason} (servers are required here: CI or RAGSCOPE_REQUIRE_SERVERS=1)")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate by pid, wait with a timeout, kill if it did not go."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_SECONDS)
