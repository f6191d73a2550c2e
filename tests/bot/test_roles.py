"""`ragscope run --role gateway|worker|all` and the settings for more than one process: the queue's backend,
the Redis URL from the environment (never logged, password included), the shards.

The worker role is started for real (`python -m ragscope run --role worker`, against the test Redis) over an
empty knowledge folder, so no model is loaded: it joins the consumer group, and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from bot.app import configure_logging, main, url_secrets
from bot.client import RagBot, ShardedRagBot, make_bot
from bot.config import BotConfig, bot_config
from bot.redis_queue import GROUP, QueueKeys
from rag_engine.config import Config, load_config
from rag_engine.engine import Engine
from rag_engine.errors import ConfigError
from tests.conftest import REPO, write
from tests.servers import free_port, stop_process
from tests.servers_redis import RedisServer

PASSWORD = "s3cret-pw-" + "x" * 8


def test_one_process_is_the_default() -> None:
    settings = bot_config(load_config(REPO / "config.toml"))
    assert settings.queue_backend == "local" and settings.shard_count == 0 and settings.shard_ids == ()
    assert settings.redis_url_env == "RAGSCOPE_REDIS_URL"


def test_the_scale_settings_are_read(tmp_path: Path) -> None:
    text = (
        '[bot]\nqueue_backend = "redis"\nredis_url_env = "MY_REDIS"\nqueue_name = "bots"\n'
        "visibility_timeout_seconds = 12\nshard_count = 4\nshard_ids = [2, 3]\n"
    )
    settings = bot_config(load_config(write(tmp_path / "c.toml", text)))
    assert (settings.queue_backend, settings.redis_url_env, settings.queue_name) == ("redis", "MY_REDIS", "bots")
    assert settings.visibility_timeout_seconds == 12.0 and settings.shard_ids == (2, 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('queue_backend = "kafka"', "bot.queue_backend must be one of local, redis"),
        ("visibility_timeout_seconds = 0", "visibility_timeout_seconds must be > 0"),
        ('queue_name = " "', "queue_name"),
        ("shard_count = -1", "bot.shard_count must be 0"),
        ("shard_ids = [0]", "bot.shard_ids needs bot.shard_count"),
        ("shard_count = 2\nshard_ids = [2]", r"shard numbers 0\.\.1, not 2"),
        ('shard_count = 2\nshard_ids = ["1"]', "not '1'"),
        ("shard_count = 2\nshard_ids = [1, 1]", "lists a shard twice"),
    ],
)
def test_bad_scale_settings_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        bot_config(load_config(write(tmp_path / "c.toml", f"[bot]\n{text}\n")))


def test_shards_make_the_sharded_client(config: Config) -> None:
    engine = Engine(config)
    plain = make_bot(config, engine, BotConfig(), watch=False)
    sharded = make_bot(config, engine, BotConfig(shard_count=4, shard_ids=(1, 3)), watch=False)
    assert type(plain) is RagBot
    assert isinstance(sharded, ShardedRagBot) and sharded.shard_count == 4 and sharded.shard_ids == [1, 3]
    everything = make_bot(config, engine, BotConfig(shard_count=2), watch=False)
    assert isinstance(everything, ShardedRagBot) and everything.shard_ids is None  # all shards here


@pytest.mark.parametrize("role", ["gateway", "worker"])
def test_a_role_past_one_process_needs_the_redis_backend_and_its_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], role: str
) -> None:
    local = write(tmp_path / "local.toml", "")
    assert main(["--config", str(local), "--role", role]) == 2
    assert 'queue_backend = "redis"' in capsys.readouterr().err
    monkeypatch.delenv("RAGSCOPE_REDIS_URL", raising=False)
    remote = write(tmp_path / "redis.toml", '[bot]\nqueue_backend = "redis"\n')
    assert main(["--config", str(remote), "--role", role]) == 2
    assert "RAGSCOPE_REDIS_URL" in capsys.readouterr().err


def test_the_redis_url_and_its_password_never_reach_a_log(restore_logging: None) -> None:
    url = f"redis://:{PASSWORD}@10.0.0.5:6379/0"
    assert url_secrets(url) == [url, PASSWORD] and url_secrets("redis://h:6379/0") == ["redis://h:6379/0"]
    configure_logging(False, "the-token", *url_secrets(url))
    written = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(written)
    logging.getLogger("bot").warning("connecting to %s failed: AUTH %s refused (token the-token)", url, PASSWORD)
    assert PASSWORD not in written.getvalue() and "the-token" not in written.getvalue()
    assert "[redacted]" in written.getvalue()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def start_worker_role(tmp_path: Path, url: str, queue_name: str) -> subprocess.Popen[bytes]:
    """`ragscope run --role worker -v` in a process; its log goes to tmp_path/worker.log."""
    (tmp_path / "knowledge").mkdir(exist_ok=True)  # no domains: the worker starts without loading a model
    config = write(
        tmp_path / "config.toml",
        f'[paths]\nknowledge_dir = "knowledge"\ndata_dir = "data"\n[bot]\nqueue_backend = "redis"\n'
        f'queue_name = "{queue_name}"\nvisibility_timeout_seconds = 2\n',
    )
    env = {**os.environ, "RAGSCOPE_REDIS_URL": url, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "ragscope", "run", "--role", "worker", "--config", str(config), "-v"]
    with (tmp_path / "worker.log").open("wb") as log:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for(condition: Callable[[], object], worker: subprocess.Popen[bytes], log: Path, what: str) -> None:
    """Poll `condition` with a deadline; fail with the worker's log if it exits or the deadline passes."""
    deadline = time.monotonic() + 30
    while not condition():
        if worker.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{what}: {log.read_text(errors='replace')}")
        time.sleep(0.05)  # polling the condition, with a deadline


def test_the_worker_role_joins_the_queue_and_stops_on_sigterm(tmp_path: Path, redis_server: RedisServer) -> None:
    keys = QueueKeys(f"role-{uuid.uuid4().hex[:8]}")
    worker = start_worker_role(tmp_path, redis_server.url, keys.prefix)
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        wait_for(lambda: _consumers(client, keys), worker, tmp_path / "worker.log", "the worker never joined")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(10) == 0
    finally:
        stop_process(worker)
        client.close()
    logged = (tmp_path / "worker.log").read_text()
    assert "taking jobs from" in logged and redis_server.url not in logged


def test_a_redis_password_is_not_logged_when_redis_is_down(tmp_path: Path) -> None:
    # Nothing listens on the port: the worker says so and keeps trying, without showing the URL's password.
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    worker = start_worker_role(tmp_path, url, f"auth-{uuid.uuid4().hex[:8]}")
    log = tmp_path / "worker.log"
    try:
        wait_for(lambda: "the Redis queue failed" in log.read_text(), worker, log, "no failure was logged")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(10) == 0
    finally:
        stop_process(worker)
    logged = log.read_text()
    assert "Connection refused" in logged and PASSWORD not in logged


def _consumers(client: redis.Redis, keys: QueueKeys) -> list[str]:
    try:
        return [str(c["name"]) for c in client.xinfo_consumers(keys.jobs, GROUP)]
    except redis.ResponseError:  # no stream or group yet
        return []
