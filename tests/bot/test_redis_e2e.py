"""The bot past one machine, end to end: a gateway on the Discord emulator and two answer-worker processes
behind a real Redis (tests/servers.py).

The gateway is the real bot (`make_bot` with the Redis `JobQueue`; sharded, one shard, so discord.py's
`AutoShardedClient` runs against the emulator) over fake models whose generator refuses to run: every answer
must come from a worker. The workers are `python -m tests.bot.redis_worker` processes (`bot.worker.run_worker`
over fake models, tests/bot/redis_worker.py), each with its own index. Thirty simultaneous `/ask`s each get
exactly one answer, the one the single process would give; a worker killed with SIGKILL mid-answer leaves its
question to the other, which answers it once, its streamed text started over cleanly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.client import RagBot, ShardedRagBot, make_bot
from bot.config import BotConfig
from bot.redis_queue import GROUP, QueueKeys, redis_job_queue
from bot.render.answer import answer_content, answer_label, answer_messages
from bot.worker import AnswerWorker, serve
from rag_engine.config import Config
from rag_engine.engine import Engine
from tests.bot.redis_worker import HOLD
from tests.conftest import REPO
from tests.discord_emulator import DiscordEmulator, InteractionRecord, MessageRecord, payloads, running_bot
from tests.fakes import EchoGenerator, HashingEmbedder, UniformAttention
from tests.servers import stop_process
from tests.servers_redis import RedisServer

VISIBILITY = 1.5  # seconds before a silent worker's job is taken again
QUESTIONS = ("What does the zorblat eat?", "Where does the quillfish swim?", "When did the Varnholm basalt form?")
ASKERS = 30
TIMEOUT = 60.0


class RefusingGenerator(EchoGenerator):
    """The gateway's generator: a gateway never generates, its workers do."""

    def stream(self, prompt: str, max_tokens: int, context: str = "") -> Iterator[str]:
        raise AssertionError("the gateway generated an answer itself")


@dataclass
class Deployment:
    """The test's machines: Redis, the workers' processes by name, the gateway's settings."""

    redis: redis.Redis
    keys: QueueKeys
    settings: BotConfig
    workers: dict[str, subprocess.Popen[bytes]]
    logs: Path

    def generated(self) -> dict[str, int]:
        return {name: int(self.redis.get(f"{self.keys.prefix}:generated:{name}") or 0) for name in self.workers}

    def worker_log(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.logs.glob("*.log")))


def poll(condition: Callable[[], object], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)  # polling the condition, with a deadline


def write_worker_config(tmp_path: Path, config: Config, queue_name: str) -> Path:
    path = tmp_path / "worker.toml"
    path.write_text(
        f'[paths]\nknowledge_dir = "{config.paths.knowledge_dir}"\n'
        f'[retrieval]\nmax_distance = {config.retrieval.max_distance}\nmode = "{config.retrieval.mode}"\n'
        f'[bot]\nqueue_backend = "redis"\nqueue_name = "{queue_name}"\nvisibility_timeout_seconds = {VISIBILITY}\n'
    )
    return path


@pytest.fixture
def deployment(tmp_path: Path, bot_config: Config, redis_server: RedisServer) -> Iterator[Deployment]:
    """Two worker processes on the test Redis, ready (in the consumer group) before the test starts."""
    keys = QueueKeys(f"e2e-{uuid.uuid4().hex[:8]}")
    settings = BotConfig(
        edit_interval_seconds=0.05,
        cooldown_burst=50,
        max_queue_length=40,
        queue_backend="redis",
        queue_name=keys.prefix,
        visibility_timeout_seconds=VISIBILITY,
        shard_count=1,
        shard_ids=(0,),
    )
    config_file = write_worker_config(tmp_path, bot_config, keys.prefix)
    env = {**os.environ, settings.redis_url_env: redis_server.url, "HF_HUB_OFFLINE": "1"}
    logs = tmp_path / "logs"
    logs.mkdir()
    workers = {}
    for name in ("w1", "w2"):
        command = [sys.executable, "-m", "tests.bot.redis_worker", str(config_file), "--name", name]
        command += ["--data-dir", str(tmp_path / f"data-{name}"), "--token-seconds", "0.01"]
        with (logs / f"{name}.log").open("wb") as log:
            workers[name] = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    deployed = Deployment(client, keys, settings, workers, logs)
    try:
        poll(lambda: _joined(deployed), "both workers to join the consumer group", 30)
        yield deployed
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.terminate()  # all at once: each finishes its current wait for a job, then exits
        for process in workers.values():
            stop_process(process)
        client.close()


def _joined(deployed: Deployment) -> bool:
    for name, process in deployed.workers.items():
        if process.poll() is not None:
            raise AssertionError(f"worker {name} exited: {deployed.worker_log()}")
    try:
        names = {str(c["name"]) for c in deployed.redis.xinfo_consumers(deployed.keys.jobs, GROUP)}
    except redis.ResponseError:
        return False
    return names >= set(deployed.workers)


@pytest.fixture(autouse=True)
def ready_names_its_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Discord's READY carries `shard` ([id, count]) for a client that identified with one, and discord.py's
    sharded client reads it; the emulator serves one unsharded session, so its READY gets shard 0 of 1."""
    plain = payloads.ready

    def with_shard(**fields: Any) -> payloads.Payload:
        return {**plain(**fields), "shard": [0, 1]}

    monkeypatch.setattr(payloads, "ready", with_shard)


@asynccontextmanager
async def gateway(emu: DiscordEmulator, config: Config, deployed: Deployment, url: str) -> AsyncIterator[RagBot]:
    engine = Engine(config, embedder=HashingEmbedder, generator=RefusingGenerator, attention=UniformAttention)
    bot = make_bot(config, engine, deployed.settings, answers=redis_job_queue(url, deployed.settings))
    assert isinstance(bot, ShardedRagBot)
    async with running_bot(emu, bot):
        yield bot


def expected_content(config: Config, tmp_path: Path, question: str) -> str:
    """What the one-process bot shows for `question`: the same fake models over the same folder."""
    here = dataclasses.replace(config).with_paths(data_dir=tmp_path / "reference")
    engine = Engine(here, embedder=HashingEmbedder, generator=EchoGenerator)
    return answer_messages(engine.answer(engine.check(question)))[0]


def finals(message: MessageRecord) -> int:
    """How many times the message was given a final answer (the sources embed comes only with it)."""
    return sum(1 for revision in message.revisions if revision.embeds)


async def test_thirty_simultaneous_questions_get_one_answer_each_from_two_workers(
    tmp_path: Path, bot_config: Config, deployment: Deployment, redis_server: RedisServer
) -> None:
    expected = {question: expected_content(bot_config, tmp_path, question) for question in QUESTIONS}
    users = [f"user{index}" for index in range(ASKERS)]
    async with DiscordEmulator(usernames=users) as emu, gateway(emu, bot_config, deployment, redis_server.url):
        asked: list[tuple[str, InteractionRecord]] = []
        for index, user in enumerate(users):
            question = QUESTIONS[index % len(QUESTIONS)]
            asked.append((question, await emu.invoke_command("ask", {"question": question}, user=user)))
        answers = await asyncio.gather(
            *(inter.wait_response_done(lambda m: bool(m.embeds), timeout=TIMEOUT) for _, inter in asked)
        )
        await asyncio.to_thread(poll, lambda: deployment.redis.xlen(deployment.keys.jobs) == 0, "an empty queue")
        for (question, inter), final in zip(asked, answers, strict=True):
            assert final.content == expected[question]
            assert finals(final) == 1 and inter.followups == []
        # Waiting questions were told their place, from the stream.
        assert any("In the queue: #" in text for _, inter in asked for text in inter.messages[0].content_history)
        assert emu.violations == []
    generated = deployment.generated()
    assert sum(generated.values()) == ASKERS and all(generated.values()), generated  # once each, both worked


async def test_a_worker_killed_mid_answer_leaves_its_question_to_the_other_answered_once(
    tmp_path: Path, bot_config: Config, deployment: Deployment, redis_server: RedisServer
) -> None:
    question = f"{HOLD}: what does the zorblat eat?"
    expected = expected_content(bot_config, tmp_path, question)
    async with DiscordEmulator() as emu, gateway(emu, bot_config, deployment, redis_server.url):
        inter = await emu.invoke_command("ask", {"question": question})
        first_word = expected.split("\n", 1)[1].split()[0]
        await inter.wait_response_done(lambda m: first_word in m.content, timeout=TIMEOUT)
        # The user saw the start of the answer: kill its worker now.
        [pending] = deployment.redis.xpending_range(deployment.keys.jobs, GROUP, min="-", max="+", count=10)
        victim = str(pending["consumer"])
        [(_, fields)] = deployment.redis.xrange(deployment.keys.jobs, pending["message_id"], pending["message_id"])
        deployment.workers[victim].send_signal(signal.SIGKILL)
        assert deployment.workers[victim].wait(10) == -signal.SIGKILL
        deployment.redis.lpush(f"{deployment.keys.prefix}:release", "go")

        final = await inter.wait_response_done(lambda m: bool(m.embeds), timeout=TIMEOUT)
        assert final.content == expected and finals(final) == 1 and inter.followups == []
        # The streamed text started over: the placeholder came back after the first worker's words.
        history = final.content_history
        label = answer_label(None, True)
        shown_first = next(i for i, text in enumerate(history) if first_word in text)
        assert answer_content(None, "", label=label) in history[shown_first:]
        assert emu.violations == []
    survivor = next(name for name in deployment.workers if name != victim)
    assert deployment.generated() == {victim: 1, survivor: 1}
    assert deployment.redis.hget(deployment.keys.job(fields["job"]), "attempt") == "2"
    assert deployment.workers[survivor].poll() is None


async def test_role_all_over_redis_answers_with_the_worker_inside_the_gateway(
    tmp_path: Path, bot_config: Config, redis_server: RedisServer
) -> None:
    keys = QueueKeys(f"all-{uuid.uuid4().hex[:8]}")
    settings = dataclasses.replace(BotConfig(edit_interval_seconds=0.05), queue_backend="redis", queue_name=keys.prefix)
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    inside = dataclasses.replace(bot_config).with_paths(data_dir=tmp_path / "inside")
    echo = Engine(inside, embedder=HashingEmbedder, generator=EchoGenerator)
    worker = AnswerWorker(echo, client, keys, VISIBILITY, name="inside")
    queue = redis_job_queue(redis_server.url, settings, partial(serve, worker))
    engine = Engine(bot_config, embedder=HashingEmbedder, generator=RefusingGenerator, attention=UniformAttention)
    bot = make_bot(bot_config, engine, settings, answers=queue)
    assert type(bot) is RagBot  # no shards configured: the plain client
    async with DiscordEmulator() as emu, running_bot(emu, bot):
        inter = await emu.invoke_command("ask", {"question": QUESTIONS[1]})
        final = await inter.wait_response_done(lambda m: bool(m.embeds), timeout=TIMEOUT)
        assert final.content == expected_content(bot_config, tmp_path, QUESTIONS[1])
        assert emu.violations == []
    # The bot's close stopped the worker with it: nothing is left reading the queue.
    consumers = client.xinfo_consumers(keys.jobs, GROUP)
    assert [c["name"] for c in consumers] == ["inside"] and client.xlen(keys.jobs) == 0
    client.close()
