"""Servers the tests start for themselves: llama-cpp-python's OpenAI-compatible server (`python -m
llama_cpp.server`) serving the bundled SmolLM2 GGUF.

Each server runs from a temp folder on 127.0.0.1 and a free port, is ready once `/v1/models` answers (polled
against a deadline; a server that exits first fails the wait with its log), and is stopped by its pid
(terminate, wait with a timeout, kill). Where a server truly cannot be started the test is skipped with the
reason, except in CI (`CI` set, or `RAGSCOPE_REQUIRE_SERVERS=1`), where it fails instead. Not here: the tests
themselves, and any other kind of server.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rag_engine.config import GenerationConfig
from rag_engine.errors import ModelError
from rag_engine.generate.generation import gguf_path
from tests.servers import free_port, server_unavailable

# The model the servers serve: the bundled SmolLM2 (small and fast), under this name.
SERVED_MODEL = "smollm2"
SERVED_GENERATION = GenerationConfig(model=SERVED_MODEL)
# The session server's API key: a test secret, passed to the server on its command line.
LLAMA_SERVER_KEY = "ragscope-test-key-7f3c9a1e"
READY_SECONDS = 90.0


@dataclass
class LlamaServer:
    """One running `python -m llama_cpp.server`."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    api_key: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """kill -9, and reap it."""
        self.process.kill()
        self.process.wait(timeout=30)

    def pause(self) -> None:
        """SIGSTOP: the server still accepts connections (the kernel does) but never answers."""
        self.process.send_signal(signal.SIGSTOP)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)

    def wait_ready(self, deadline: float) -> None:
        """Poll `/v1/models` until it answers; the poll's pause is a wait on the process, so a server that
        exits is seen at once."""
        request = urllib.request.Request(self.base_url + "/models")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(request, timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            try:
                code = self.process.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
            server_unavailable(f"llama_cpp.server exited with {code}: {self.log_text()[-1500:]}")
        self.stop()
        server_unavailable(f"llama_cpp.server did not answer /v1/models within {READY_SECONDS:.0f} s")


def start_llama_servers(folder: Path, count: int = 1, api_key: str | None = None) -> list[LlamaServer]:
    """`count` servers of the bundled SmolLM2 (one thread each), started together, returned once all answer."""
    try:
        model = gguf_path(SERVED_GENERATION)
    except ModelError as exc:
        server_unavailable(f"the bundled SmolLM2 GGUF is not available: {exc}")
    if not model.is_file():
        server_unavailable(f"the bundled SmolLM2 GGUF is missing: {model}")
    servers = []
    for _ in range(count):
        port = free_port()
        log = folder / f"llama-server-{port}.log"
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", SERVED_MODEL]
        command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]
        command += ["--n_threads", "1", "--n_threads_batch", "1", "--use_mlock", "False"]
        command += ["--api_key", api_key] if api_key else []
        with log.open("wb") as out:
            process = subprocess.Popen(command, cwd=folder, stdout=out, stderr=subprocess.STDOUT)
        servers.append(LlamaServer(process, port, log, api_key))
    deadline = time.monotonic() + READY_SECONDS
    try:
        for server in servers:
            server.wait_ready(deadline)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """One server for the session, with an API key (`LLAMA_SERVER_KEY`)."""
    (server,) = start_llama_servers(tmp_path_factory.mktemp("llama-server"), api_key=LLAMA_SERVER_KEY)
    yield server
    server.stop()


@pytest.fixture
def llama_servers(tmp_path: Path) -> Iterator[Callable[[int], list[LlamaServer]]]:
    """Start servers of one's own (without a key), to kill or pause; all stopped after the test."""
    started: list[LlamaServer] = []

    def start(count: int) -> list[LlamaServer]:
        servers = start_llama_servers(tmp_path, count)
        started.extend(servers)
        return servers

    yield start
    for server in started:
        server.stop()
