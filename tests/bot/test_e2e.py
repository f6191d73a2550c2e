"""End to end: the real `RagBot` with the REAL models, through the unmodified discord.py client and the emulator.

all-MiniLM-L6-v2 and SmolLM2-135M (GGUF, llama.cpp) are loaded once for the module and shared by every bot
the tests start; each test gets its own knowledge folder (copies of shipped domains) and data folder under
`tmp_path`, so the shipped `knowledge/` is never touched. Answers are short (`max_answer_tokens` 48) to keep
the module fast; generation is greedy (temperature 0), so running the same question through
`engine.answer` again gives the same text, which several tests use as the expected final message.

Waits are the emulator's await-able helpers with timeouts, never sleeps. The one `asyncio.sleep` in the module
is the event-loop lag probe of the load test: it measures how late the loop wakes, it does not wait for the bot.
Every test ends with no Discord rule broken (`emulator.violations == []`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import shutil
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.client import RagBot
from bot.config import BotConfig
from bot.render.answer import answer_content, check_note
from rag_engine.config import Config, WatchConfig, load_config
from rag_engine.engine import Engine
from rag_engine.generate.generation import LlamaGenerator
from rag_engine.ingest.embedding import SentenceTransformerEmbedder
from rag_engine.records import Answer
from tests.conftest import REPO, SHIPPED_KNOWLEDGE
from tests.discord_emulator import DiscordEmulator, InteractionRecord, MessageRecord, running_bot
from tests.discord_emulator.records import route_matches

pytestmark = pytest.mark.real_models

DOMAINS = ("history", "cooking")
EDIT_ROUTE = "PATCH /webhooks/*/*/messages/*"
NORAG_LABEL = "No RAG: the model's weights alone"
QUEUE_MARK = "In the queue: #"
# Generous: on two busy cores one answer takes 1-3 s, and some waits sit behind a queue of answers.
ANSWER_TIMEOUT = 90.0
LOAD_USERS = 30
# The load test's budget comes from one answer timed on this machine first: the answers are generated one at a
# time, so the last of LOAD_USERS waits about LOAD_USERS answers; the factor covers a machine that gets busier
# meanwhile (and the loop editing 30 messages), the slack the start and the last edits.
LOAD_BUDGET_FACTOR = 3.0
LOAD_BUDGET_SLACK_SECONDS = 60.0

Models = tuple[SentenceTransformerEmbedder, LlamaGenerator]
RecordProperty = Callable[[str, object], None]


# -- fixtures -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped_settings() -> Config:
    """The repository's config.toml (the real models), paths replaced per test."""
    return load_config(REPO / "config.toml")


@pytest.fixture(scope="module")
def models(shipped_settings: Config) -> Models:
    """Each real model loaded once for the whole module."""
    return (
        SentenceTransformerEmbedder(shipped_settings.embedding),
        LlamaGenerator(shipped_settings.generation),
    )


@pytest.fixture(scope="module")
def indexed_template(tmp_path_factory: pytest.TempPathFactory, shipped_settings: Config, models: Models) -> Path:
    """The shipped domains copied and indexed ONCE with the real embedder (`knowledge/` and `data/` side by
    side). Each test copies both (mtimes kept), so a bot's first sync only stats the files: it finds nothing
    to embed. What a test adds (an upload) is embedded for real by the bot's watcher."""
    root = tmp_path_factory.mktemp("e2e-template")
    for domain in DOMAINS:
        shutil.copytree(SHIPPED_KNOWLEDGE / domain, root / "knowledge" / domain)
    embedder, generator = models
    config = shipped_settings.with_paths(knowledge_dir=root / "knowledge", data_dir=root / "data")
    engine = Engine(config, embedder=lambda: embedder, generator=lambda: generator)
    for domain in DOMAINS:
        assert engine.index(domain).passages > 0
    return root


@pytest.fixture
def e2e_config(tmp_path: Path, shipped_settings: Config, indexed_template: Path) -> Config:
    """A copy of the indexed shipped domains in tmp_path; short answers, a fast watcher, and sources ranked by
    embeddings (nearest first, as the journeys check; `mode:` tests ask for the others)."""
    knowledge, data = tmp_path / "knowledge", tmp_path / "data"
    shutil.copytree(indexed_template / "knowledge", knowledge)
    shutil.copytree(indexed_template / "data", data)
    base = shipped_settings.with_paths(knowledge_dir=knowledge, data_dir=data)
    return dataclasses.replace(
        base,
        generation=dataclasses.replace(base.generation, max_answer_tokens=48),
        retrieval=dataclasses.replace(base.retrieval, mode="dense"),
        watch=WatchConfig(rebuild_debounce_seconds=0.2, max_rebuild_delay_seconds=2.0),
    )


# The bot's settings for every test: fast edits, a generous cooldown, a queue long enough for the load test.
E2E_SETTINGS = BotConfig(
    edit_interval_seconds=0.2, cooldown_burst=100, cooldown_seconds=1.0, max_queue_length=LOAD_USERS + 10
)


@asynccontextmanager
async def connected(emu: DiscordEmulator, config: Config, models: Models) -> AsyncIterator[RagBot]:
    """A new `RagBot` (and engine) over `config`, sharing the loaded models, connected to the emulator."""
    embedder, generator = models
    engine = Engine(config, embedder=lambda: embedder, generator=lambda: generator)
    bot = RagBot(config, engine, E2E_SETTINGS)
    # The first sync embeds every shipped document before the bot identifies: allow for a slow machine.
    async with running_bot(emu, bot, timeout=60.0):
        yield bot


@pytest.fixture
async def real_bot(emulator: DiscordEmulator, e2e_config: Config, models: Models) -> AsyncIterator[RagBot]:
    async with connected(emulator, e2e_config, models) as bot:
        yield bot


@pytest.fixture(autouse=True)
async def no_rule_broken(emulator: DiscordEmulator) -> AsyncIterator[None]:
    yield
    assert emulator.violations == []


# -- helpers --------------------------------------------------------------------------------------------------
def shipped_question(domain: str, containing: str) -> tuple[str, str]:
    """(question, expected source as "domain/file") of the knowledge/<domain>/questions.jsonl row whose
    question contains `containing`."""
    for row in shipped_rows(domain):
        if containing in row["question"]:
            return str(row["question"]), f"{domain}/{row['source']}"
    raise LookupError(f"no shipped {domain} question containing {containing!r}")


def shipped_rows(domain: str) -> list[dict[str, Any]]:
    """The domain's single-file questions (two-document and unanswerable ones have no one source to check)."""
    lines = (SHIPPED_KNOWLEDGE / domain / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [row for row in rows if row.get("kind", "single") == "single"]


@dataclasses.dataclass(frozen=True)
class Source:
    """One field of the sources embed: `#1 · history/eiffel-tower.md L1-9` / "distance `0.612` · in prompt"."""

    rank: int
    path: str
    distance: float
    use: str


_SOURCE_NAME = re.compile(r"#(\d+) · (\S+) ")
_SOURCE_VALUE = re.compile(r"distance `(\d+\.\d+)` · ([a-z ]+)\n")


def sources_of(message: MessageRecord) -> list[Source]:
    assert message.embeds, f"no sources embed: {message.summary()}"
    found = []
    for field in message.embeds[0].get("fields", []):
        name, value = _SOURCE_NAME.match(field["name"]), _SOURCE_VALUE.match(field["value"])
        assert name and value, field
        found.append(Source(int(name[1]), name[2], float(value[1]), value[2]))
    return found


def check_sources(message: MessageRecord, first: str | None = None) -> list[Source]:
    """The final message carries the sources: Euclidean distances (lower is closer), nearest first."""
    text = message.embed_text()
    assert "Euclidean distance" in text and "lower is closer" in text, text
    found = sources_of(message)
    assert found, text
    assert [s.rank for s in found] == list(range(1, len(found) + 1))
    distances = [s.distance for s in found]
    assert distances == sorted(distances) and all(0.0 <= d <= 2.0 for d in distances), distances
    assert found[0].use == "in prompt", found[0]
    if first is not None:
        assert found[0].path == first, [s.path for s in found]
    return found


def has_sources(message: MessageRecord) -> bool:
    """The final RAG answer: the streamed message gets its sources embed only in its last edit."""
    return bool(message.embeds)


def streamed_bodies(message: MessageRecord, label: str) -> list[str]:
    """The answer text of every revision that showed a partial (streamed) answer, in order."""
    head = f"**{label}**\n"
    bodies = []
    for revision in message.revisions:
        if revision.embeds or not revision.content.startswith(head) or QUEUE_MARK in revision.content:
            continue
        body = revision.content[len(head) :]
        if body != "…":  # the placeholder before the first token
            bodies.append(body)
    return bodies


def files_under(root: Path, skip: Path) -> set[Path]:
    """Every file below `root` (the data folder `skip` excluded): what an upload may have written."""
    return {p for p in root.rglob("*") if p.is_file() and skip not in p.parents}


async def direct_answer(engine: Engine, question: str, domain: str | None, *, use_rag: bool = True) -> Answer:
    """The same question straight through the engine (greedy decoding: the bot must have shown this text)."""
    return await asyncio.to_thread(engine.answer, question, domain, use_rag=use_rag)


class LoopLag:
    """Measures event-loop lag: a task sleeps `interval` again and again and records how late it wakes."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval)
            self.samples.append(max(0.0, loop.time() - started - self.interval))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[LoopLag]:
        self._task = asyncio.create_task(self._probe(), name="loop-lag-probe")
        try:
            yield self
        finally:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    @property
    def max_ms(self) -> float:
        return max(self.samples, default=0.0) * 1000

    @property
    def p95_ms(self) -> float:
        if len(self.samples) < 2:
            return self.max_ms
        return statistics.quantiles(self.samples, n=20)[-1] * 1000


def ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f} ms"


# -- questions ------------------------------------------------------------------------------------------------
async def test_ask_defers_streams_by_edits_and_ends_with_the_sources(
    emulator: DiscordEmulator, real_bot: RagBot
) -> None:
    # A question with a longer answer (about 40 tokens): several edits while it streams.
    question, source = shipped_question("history", "full control of its canal")
    inter = await emulator.invoke_command("ask", {"question": question, "domain": "history"})
    await inter.wait_acknowledged()
    assert inter.deferred and inter.ack_latency is not None and inter.ack_latency < 3
    final = await inter.wait_response_done(has_sources, timeout=ANSWER_TIMEOUT)

    label = "RAG answer · history"
    assert final.content.startswith(f"**{label}**\n")
    answer_text = final.content.split("\n", 1)[1]
    assert answer_text.strip() and QUEUE_MARK not in final.content
    check_sources(final, first=source)
    assert [b["custom_id"] for b in final.buttons] == ["ragscope:norag", "ragscope:pipeline", "ragscope:sources"]

    # Streamed by edits: partial texts that grow, each the start of the next and of the final answer.
    partial = streamed_bodies(final, label)
    assert len(partial) >= 2, final.content_history
    assert len(partial[0].rstrip()) < len(answer_text), final.content_history
    for before, after in zip(partial, [*partial[1:], answer_text], strict=True):
        assert after.startswith(before.rstrip()), (before, after)
        assert len(before.rstrip()) <= len(after)
    assert final.content_history[0] == ""  # the deferred "thinking" placeholder came first


async def test_a_mention_is_answered_as_a_reply_with_sources(emulator: DiscordEmulator, real_bot: RagBot) -> None:
    question, source = shipped_question("history", "Orville Wright")
    asked = await emulator.send_message("general", "alice", question, mention_bot=True)
    reply = await emulator.wait_for_message("general", has_sources, after=asked, timeout=ANSWER_TIMEOUT)
    assert reply.message_reference is not None and reply.message_reference["message_id"] == asked.id
    # No channel domain is set, so every domain is searched; the shipped file still comes first.
    assert reply.content.startswith("**RAG answer · all domains**\n") and not reply.ephemeral
    check_sources(reply, first=source)
    assert reply.edit_count >= 2  # the "…" placeholder was streamed into before the final edit


async def test_answer_without_rag_button_gives_a_labelled_no_rag_answer(
    emulator: DiscordEmulator, real_bot: RagBot
) -> None:
    question, source = shipped_question("cooking", "shredded cabbage")
    inter = await emulator.invoke_command("ask", {"question": question, "domain": "cooking"})
    answer = await inter.wait_response_done(has_sources, timeout=ANSWER_TIMEOUT)
    check_sources(answer, first=source)

    expected = await direct_answer(real_bot.engine, question, "cooking", use_rag=False)
    assert expected.text and not expected.used_rag
    click = await emulator.click_button(answer, "ragscope:norag", "bob")
    await click.wait_acknowledged()
    assert click.ack_latency is not None and click.ack_latency < 3
    full = f"**{NORAG_LABEL}**\n{expected.text}"
    norag = await click.wait_response_done(lambda m: m.content == full, timeout=ANSWER_TIMEOUT)
    assert not norag.ephemeral and not norag.embeds  # a public answer, and no sources: nothing was retrieved
    assert norag.id != answer.id and answer.embeds  # a new message; the RAG answer keeps its sources


async def test_compare_shows_both_answers_and_the_sources(emulator: DiscordEmulator, real_bot: RagBot) -> None:
    question, source = shipped_question("cooking", "egg yolk")
    inter = await emulator.invoke_command("compare", {"question": question, "domain": "cooking"})
    await inter.wait_acknowledged()
    assert inter.ack_latency is not None and inter.ack_latency < 3
    final = await inter.wait_response_done(has_sources, timeout=2 * ANSWER_TIMEOUT)
    check_sources(final, first=source)

    with_rag = await direct_answer(real_bot.engine, question, "cooking")
    without = await direct_answer(real_bot.engine, question, "cooking", use_rag=False)
    assert with_rag.covered and with_rag.text and without.text
    note = check_note(with_rag)
    rag_side = with_rag.text + ("\n" + note if note else "")
    assert final.content == (
        f"**With RAG · cooking**\n{rag_side}\n\n**Without RAG · the model's weights alone**\n{without.text}"
    )


async def test_pipeline_shows_five_steps_with_the_real_attention_picture(
    emulator: DiscordEmulator, real_bot: RagBot
) -> None:
    question, source = shipped_question("history", "Orville Wright")
    inter = await emulator.invoke_command("pipeline", {"question": question, "domain": "history"})
    await inter.wait_acknowledged()
    assert inter.ack_latency is not None and inter.ack_latency < 3
    # Loading the attention model (transformers reading the GGUF) takes most of the wait.
    shown = await inter.wait_response_done(lambda m: len(m.embeds) == 5, timeout=4 * ANSWER_TIMEOUT)
    assert [embed["title"].split(" · ", 1)[0] for embed in shown.embeds] == ["1", "2", "3", "4", "5"]
    text = shown.embed_text()
    assert "lower is closer" in text and source.split("/", 1)[1] in text and "```ansi" in text
    for name in ("embedding_map.png", "attention.png"):
        picture = shown.file(name)
        assert picture is not None and picture.data.startswith(b"\x89PNG"), name
    prompt = shown.file("prompt.txt")
    assert prompt is not None and question.encode() in prompt.data


async def test_ask_in_hybrid_mode_names_the_mode_and_both_ranks(emulator: DiscordEmulator, real_bot: RagBot) -> None:
    question, source = shipped_question("cooking", "shredded cabbage")
    inter = await emulator.invoke_command("ask", {"question": question, "domain": "cooking", "mode": "hybrid"})
    final = await inter.wait_response_done(has_sources, timeout=ANSWER_TIMEOUT)
    assert final.content.startswith("**RAG answer · cooking · hybrid**\n")
    first = final.embeds[0]["fields"][0]
    assert source.split("/", 1)[1] in first["name"] and "dense #" in first["value"] and "bm25 #" in first["value"]
    expected = await asyncio.to_thread(real_bot.engine.answer, question, "cooking", mode="hybrid")
    assert final.content.split("\n", 1)[1].startswith(expected.text.strip()[:40])


async def test_domain_switch_survives_a_restart_and_ask_then_uses_it(
    emulator: DiscordEmulator, e2e_config: Config, models: Models
) -> None:
    async with connected(emulator, e2e_config, models):
        switched = await (await emulator.invoke_command("domain", {"name": "cooking"})).wait_response_done()
        assert "now searches **cooking**" in switched.content
    # A new bot (new engine, same data folder) connects to the same emulator.
    async with connected(emulator, e2e_config, models):
        assert len(emulator.command_syncs) == 1  # unchanged commands are not registered again
        shown = await (await emulator.invoke_command("domain", {})).wait_response_done()
        assert "searches **cooking**" in shown.content
        question, source = shipped_question("cooking", "capsaicin")
        inter = await emulator.invoke_command("ask", {"question": question})  # no domain: the channel's
        final = await inter.wait_response_done(has_sources, timeout=ANSWER_TIMEOUT)
        assert final.content.startswith("**RAG answer · cooking**\n")
        found = check_sources(final, first=source)
        assert all(s.path.startswith("cooking/") for s in found), found


# -- uploads --------------------------------------------------------------------------------------------------
VELLMARK = (
    b"# The Vellmark lantern festival\n\n"
    b"The Vellmark lantern festival is held every year on the ninth night of Frostmonth in the mountain town of "
    b"Quibbleton. The glassblower Orsolya Tandrake founded the festival and lit its first lantern in 1742. "
    b"Vellmark lanterns are filled with blue juniper oil and float down the river Ambrel at midnight.\n"
)


def grant_knowledge_role(emu: DiscordEmulator, user: str) -> None:
    emu.add_role("Knowledge Editor")
    emu.set_roles(user, ["Knowledge Editor"])


async def refusal(emu: DiscordEmulator, inter: InteractionRecord, text: str) -> MessageRecord:
    """The interaction's message containing `text`, whether the bot answered directly or by a followup."""
    found: MessageRecord = await emu.wait_for(
        lambda: next((m for m in inter.messages if text in m.content), None), what=f"a reply saying {text!r}"
    )
    return found


async def test_upload_by_an_editor_is_indexed_and_cited_first(
    emulator: DiscordEmulator, real_bot: RagBot, e2e_config: Config
) -> None:
    grant_knowledge_role(emulator, "alice")
    inter = await emulator.invoke_command(
        "knowledge upload", {"file": ("vellmark-lanterns.md", VELLMARK), "domain": "history"}, user="alice"
    )
    await inter.wait_acknowledged()
    done = await inter.wait_response_done(lambda m: "searchable" in m.content, timeout=60)
    assert "vellmark-lanterns.md" in done.content and "**history**" in done.content
    saved = Path(e2e_config.paths.knowledge_dir) / "history" / "vellmark-lanterns.md"
    assert saved.read_bytes() == VELLMARK

    ask = await emulator.invoke_command(
        "ask", {"question": "Who lit the first lantern of the Vellmark lantern festival?", "domain": "history"}
    )
    answer = await ask.wait_response_done(has_sources, timeout=ANSWER_TIMEOUT)
    check_sources(answer, first="history/vellmark-lanterns.md")
    print(f"\n[upload] the model answered from the uploaded fact: {answer.content!r}")


async def test_upload_without_permission_is_refused_and_writes_nothing(
    emulator: DiscordEmulator, real_bot: RagBot, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    before = files_under(tmp_path, data)
    inter = await emulator.invoke_command(
        "knowledge upload", {"file": ("sneaky.md", b"Nothing to see here.\n"), "domain": "history"}, user="bob"
    )
    refused = await inter.wait_response_done()
    assert refused.ephemeral and "Manage Server" in refused.content and "Knowledge Editor" in refused.content
    assert files_under(tmp_path, data) == before
    upload = next(f for f in emulator.files.values() if f.filename == "sneaky.md")
    assert upload.downloads == 0  # the bot did not even fetch the attachment


async def test_upload_names_cannot_escape_the_domain_folder(
    emulator: DiscordEmulator, real_bot: RagBot, e2e_config: Config, tmp_path: Path
) -> None:
    grant_knowledge_role(emulator, "alice")
    data = tmp_path / "data"
    folder = Path(e2e_config.paths.knowledge_dir) / "history"
    before = files_under(tmp_path, data)
    content = b"Passwords are not stored in this history domain.\n"

    inter = await emulator.invoke_command(
        "knowledge upload", {"file": ("../../etc/passwd.md", content), "domain": "history"}, user="alice"
    )
    done = await inter.wait_response_done(lambda m: "searchable" in m.content, timeout=60)
    assert "`passwd.md`" in done.content
    assert files_under(tmp_path, data) == before | {folder / "passwd.md"}
    assert (folder / "passwd.md").read_bytes() == content
    assert not (tmp_path / "etc").exists()

    written = files_under(tmp_path, data)
    passwd = ("../../etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    inter = await emulator.invoke_command("knowledge upload", {"file": passwd, "domain": "history"}, user="alice")
    refused = await refusal(emulator, inter, "unsupported file type")
    assert refused.ephemeral and ".md" in refused.content
    assert files_under(tmp_path, data) == written


async def test_a_refused_upload_name_leaves_no_public_thinking_message(
    emulator: DiscordEmulator, real_bot: RagBot
) -> None:
    grant_knowledge_role(emulator, "alice")
    inter = await emulator.invoke_command(
        "knowledge upload", {"file": ("../../etc/passwd", b"root:x:0:0\n"), "domain": "history"}, user="alice"
    )
    await refusal(emulator, inter, "unsupported file type")
    # The refusal is for the uploader alone: every message of the interaction is ephemeral and none is left
    # "thinking" (with Discord, a followup to a public defer replaces the thinking message, publicly).
    shown = [(m.summary(), m.ephemeral, m.loading) for m in inter.messages]
    assert all(m.ephemeral and not m.loading for m in inter.messages), shown


# -- load and rate limits ---------------------------------------------------------------------------------------
def queue_shown_after_streaming(message: MessageRecord) -> bool:
    """A queue position shown after streamed text had appeared (the text would be overwritten)."""
    streaming = False
    for content in message.content_history:
        if QUEUE_MARK in content:
            if streaming:
                return True
        elif content and not content.endswith("\n…"):
            streaming = True
    return False


async def test_thirty_users_at_once_are_all_acknowledged_and_answered(
    emulator: DiscordEmulator, real_bot: RagBot, record_property: RecordProperty
) -> None:
    rows = [(domain, row) for domain in DOMAINS for row in shipped_rows(domain)]
    users = [f"asker{i:02d}" for i in range(LOAD_USERS)]
    for user in users:
        emulator.add_member(user)
    asked = [rows[i % len(rows)] for i in range(LOAD_USERS)]

    # Time one answer on this machine, now, before the load: the budget follows the machine's speed.
    emulator.add_member("calibrator")
    domain, row = asked[0]
    timed_from = time.perf_counter()
    calibration = await emulator.invoke_command(
        "ask", {"question": row["question"], "domain": domain}, user="calibrator"
    )
    await calibration.wait_response_done(has_sources, timeout=ANSWER_TIMEOUT)
    per_answer = max(time.perf_counter() - timed_from, real_bot.queue.measured_job_seconds or 0.0)
    budget = LOAD_USERS * per_answer * LOAD_BUDGET_FACTOR + LOAD_BUDGET_SLACK_SECONDS

    lag = LoopLag()
    started = time.perf_counter()
    async with lag.running():
        inters: list[InteractionRecord] = list(
            await asyncio.gather(
                *(
                    emulator.invoke_command("ask", {"question": row["question"], "domain": domain}, user=user)
                    for user, (domain, row) in zip(users, asked, strict=True)
                )
            )
        )
        await asyncio.gather(*(i.wait_acknowledged(timeout=10) for i in inters))
        finals = await asyncio.gather(*(i.wait_response_done(has_sources, timeout=budget) for i in inters))
    wall = time.perf_counter() - started

    metrics = emulator.metrics()
    first_right = 0
    for inter, final, (domain, row) in zip(inters, finals, asked, strict=True):
        assert inter.deferred and inter.ack_latency is not None and inter.ack_latency < 3, inter.summary()
        assert final.content.startswith(f"**RAG answer · {domain}**\n") and QUEUE_MARK not in final.content
        found = check_sources(final)
        # Each user got the answer to their own question: its shipped file is among the sources.
        assert f"{domain}/{row['source']}" in [s.path for s in found], (row["question"], found)
        first_right += found[0].path == f"{domain}/{row['source']}"
        assert not queue_shown_after_streaming(final), final.content_history
    # The calibration question is one more interaction.
    assert metrics.interactions == LOAD_USERS + 1 and metrics.acknowledged == LOAD_USERS + 1 and metrics.expired == 0
    queued = [i for i in inters if any(QUEUE_MARK in c for c in i.messages[0].content_history)]
    assert queued, "no queue position was ever shown"

    report = {
        "load_users": LOAD_USERS,
        "load_seconds_per_answer": round(per_answer, 2),
        "load_budget_seconds": round(budget, 1),
        "load_wall_seconds": round(wall, 1),
        "load_ack_p50_ms": round((metrics.ack_p50 or 0) * 1000),
        "load_ack_p95_ms": round((metrics.ack_p95 or 0) * 1000),
        "load_ack_max_ms": round((metrics.ack_max or 0) * 1000),
        "load_completion_p50_s": round(metrics.completion_p50 or 0, 1),
        "load_completion_p95_s": round(metrics.completion_p95 or 0, 1),
        "load_completion_max_s": round(metrics.completion_max or 0, 1),
        "load_loop_lag_max_ms": round(lag.max_ms, 1),
        "load_loop_lag_p95_ms": round(lag.p95_ms, 1),
        "load_loop_lag_samples": len(lag.samples),
        "load_queue_positions_shown": len(queued),
        "load_expected_source_first": first_right,
        "load_requests": metrics.requests,
    }
    for key, value in report.items():
        record_property(key, value)
    print(f"\n[load] {json.dumps(report)}")


async def test_rate_limited_edits_slow_the_stream_but_lose_no_text(emulator: DiscordEmulator, real_bot: RagBot) -> None:
    emulator.rate_limit(EDIT_ROUTE, times=3, retry_after=0.3)
    question, source = shipped_question("history", "1858 cable")
    inter = await emulator.invoke_command("ask", {"question": question, "domain": "history"})
    await inter.wait_acknowledged()
    assert inter.ack_latency is not None and inter.ack_latency < 3  # the defer is a callback, not limited
    final = await inter.wait_response_done(has_sources, timeout=ANSWER_TIMEOUT)

    expected = await direct_answer(real_bot.engine, question, "history")
    assert expected.covered and expected.text
    assert final.content == answer_content(expected, "", label="RAG answer · history")
    check_sources(final, first=source)

    edits = [r for r in emulator.requests if route_matches(EDIT_ROUTE, r.method, r.path)]
    limited = [r for r in edits if r.status == 429]
    assert len(limited) == 3 and emulator.metrics().rate_limited == 3, [(r.route, r.status) for r in edits]
    # discord.py honoured retry_after: the request after each 429 came at least 0.3 s later.
    for index, request in enumerate(edits[:-1]):
        if request.status == 429:
            assert edits[index + 1].at - request.at >= 0.3 * 0.9, [(r.status, r.at) for r in edits]
    assert edits[-1].status == 200
