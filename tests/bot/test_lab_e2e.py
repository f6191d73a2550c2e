"""End to end: every `/lab` subcommand runs its REAL experiment (real embedder, real GGUF generator, the real
attention model) on the shipped history domain, through the unmodified discord.py client and the emulator.

Each answers within Discord's rules: acknowledged (deferred) within 3 s, the deferred response edited into the
report, content within 2000 characters, the PNG and the JSON attached within the interaction's upload limit,
no mention that could ping (the emulator records every broken rule: none may be). What the message shows is
checked against the very report the run produced (the cog's `run_experiment` is wrapped to keep it; the
real one still runs). The lab settings are small (k = 1, 2; a 2000-token kNN-LM datastore; short answers) to keep
the module within minutes; the models and the indexed copy of the shipped domains are test_e2e.py's fixtures.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import AsyncIterator

import pytest

from bot.client import RagBot
from bot.render.lab import EXPLANATION_CHARS, LINE_CHARS
from bot.render.text import code, escaped, truncate
from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.explain.attention import AttentionModel
from rag_engine.lab import EXPERIMENTS, run_experiment
from rag_engine.lab.report import LabReport
from tests.bot.test_e2e import (  # noqa: F401  (fixtures, used by name)
    E2E_SETTINGS,
    Models,
    e2e_config,
    indexed_template,
    models,
    shipped_settings,
)
from tests.conftest import SHIPPED_KNOWLEDGE
from tests.discord_emulator import DiscordEmulator, MessageRecord, running_bot
from tests.discord_emulator.rules import MAX_CONTENT

pytestmark = pytest.mark.real_models

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# One experiment answers the question several times (and the kNN-LM builds its datastore first) on two busy
# cores: generous, as the pipeline test's.
LAB_TIMEOUT = 900.0
SINGLE = "Roughly how many copies of Gutenberg's Bible were printed?"


def multihop_question() -> str:
    """The first two-document question of the shipped history domain."""
    line = (SHIPPED_KNOWLEDGE / "history" / "multihop.jsonl").read_text(encoding="utf-8").splitlines()[0]
    return str(json.loads(line)["question"])


QUESTIONS = {"k": SINGLE, "mmr": SINGLE, "retriever": SINGLE, "hops": multihop_question(), "knnlm": SINGLE}


@pytest.fixture(scope="module")
def attention(shipped_settings: Config) -> AttentionModel:  # noqa: F811
    """One attention model (transformers reading the GGUF) for every bot of the module: loaded on first use."""
    return AttentionModel(shipped_settings.generation)


@pytest.fixture
def lab_config(e2e_config: Config) -> Config:  # noqa: F811
    small = dataclasses.replace(
        e2e_config.lab, dilution_ks=(1, 2), knnlm_max_tokens=2000, knnlm_answer_tokens=8, duplicate_copies=2
    )
    return dataclasses.replace(e2e_config, lab=small)


@pytest.fixture
async def lab_bot(
    emulator: DiscordEmulator,
    lab_config: Config,
    models: Models,  # noqa: F811
    attention: AttentionModel,
) -> AsyncIterator[RagBot]:
    embedder, generator = models
    engine = Engine(lab_config, embedder=lambda: embedder, generator=lambda: generator, attention=lambda: attention)
    async with running_bot(emulator, RagBot(lab_config, engine, E2E_SETTINGS), timeout=60.0) as client:
        assert isinstance(client, RagBot)
        yield client


@pytest.fixture
def reports(monkeypatch: pytest.MonkeyPatch, lab_bot: RagBot) -> list[LabReport]:
    """Every report the cog's experiments return, in order (the real `run_experiment` still runs). The bot
    loaded its cog module afresh (`load_extension`), so that module, the one it runs, is the one patched."""
    kept: list[LabReport] = []

    def keeping(engine: Engine, name: str, question: str, domain: str | None) -> LabReport:
        report = run_experiment(engine, name, question, domain)
        kept.append(report)
        return report

    cog = lab_bot.get_cog("LabCog")
    assert cog is not None
    monkeypatch.setattr(sys.modules[type(cog).__module__], "run_experiment", keeping)
    return kept


@pytest.fixture(autouse=True)
async def no_rule_broken(emulator: DiscordEmulator) -> AsyncIterator[None]:
    yield
    assert emulator.violations == []


def has_report(message: MessageRecord) -> bool:
    return bool(message.files)


@pytest.mark.parametrize("name", list(EXPERIMENTS))
async def test_each_lab_command_answers_within_discords_rules(
    emulator: DiscordEmulator, lab_bot: RagBot, reports: list[LabReport], name: str
) -> None:
    question = QUESTIONS[name]
    inter = await emulator.invoke_command(f"lab {name}", {"question": question, "domain": "history"})
    await inter.wait_acknowledged()
    assert inter.deferred and inter.ack_latency is not None and inter.ack_latency < 3
    shown = await inter.wait_response_done(has_report, timeout=LAB_TIMEOUT)
    assert not shown.ephemeral and shown.edit_count >= 1

    [report] = reports
    assert (report.experiment, report.domain, report.question) == (name, "history", question)
    assert len(shown.content) <= MAX_CONTENT
    assert shown.content.startswith(f"**RAG lab · {name} · history**\n")
    assert code(truncate(report.lines()[0], LINE_CHARS)) in shown.content  # the lines, in a code block
    # The two or three sentences on what the user is looking at end the message.
    assert report.explanation.strip() and escaped(report.explanation.strip(), EXPLANATION_CHARS) in shown.content

    limit = emulator.attachment_size_limit
    picture, data = shown.file(f"lab-{name}.png"), shown.file(f"lab-{name}.json")
    assert picture.data.startswith(PNG_MAGIC) and len(picture.data) <= limit
    assert len(data.data) <= limit and json.loads(data.data) == json.loads(json.dumps(report.to_dict()))
