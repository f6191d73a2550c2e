"""`/eval`: the retrieval report of a domain's questions.jsonl, through the real discord.py client and the
loopback emulator, over fake models (the embed's layout alone: tests/bot/render/test_eval.py).

The questions are the ones of tests/rag_engine/evaluation/test_eval_domains.py: with k=1 two hits and one miss of
known rank (hit@1 67%, MRR 0.833).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.client import RagBot
from rag_engine.config import Config
from tests.conftest import write
from tests.discord_emulator import DiscordEmulator
from tests.rag_engine.evaluation.test_eval_domains import write_questions


@pytest.fixture
async def no_rule_broken(emulator: DiscordEmulator) -> AsyncIterator[None]:
    yield
    assert emulator.violations == []


pytestmark = pytest.mark.usefixtures("no_rule_broken")


async def test_eval_is_registered_with_a_domain_autocomplete(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    registered = {c["name"]: c for c in emulator.global_commands.values()}
    assert registered["eval"]["description"]
    options = {o["name"]: o for o in registered["eval"]["options"]}
    assert options["domain"].get("autocomplete") and not options["domain"].get("required")
    choices = await emulator.autocomplete("eval", "domain", "zoo")
    assert [c["value"] for c in choices] == ["zoology"]


async def test_eval_of_a_domain_shows_the_numbers_and_the_misses(
    emulator: DiscordEmulator, ragbot: RagBot, config: Config
) -> None:
    write_questions(config)
    inter = await emulator.invoke_command("eval", {"domain": "zoology", "k": 1})
    await inter.wait_acknowledged()
    assert inter.deferred
    shown = await inter.wait_for_followup(lambda m: bool(m.embeds))
    assert shown.ephemeral
    text = shown.embed_text()
    assert "Retrieval evaluation · zoology" in text
    assert "3 questions" in text and "hit@1 **67%** (2/3)" in text and "MRR@10 **0.833**" in text
    assert "Agatha Plimm described the zorblat in 1887" in text
    assert "expected `quillfish.txt` (rank 2); got `zorblat.md`" in text


async def test_eval_follows_the_channels_domain_or_evaluates_every_domain(
    emulator: DiscordEmulator, ragbot: RagBot, config: Config
) -> None:
    write_questions(config)
    write_questions(config, "geology", [json.dumps({"question": "basalt columns lava", "source": "basalt.md"})])
    # This channel searches every domain: every domain with questions is evaluated.
    everything = await (await emulator.invoke_command("eval", {"k": 1})).wait_for_followup(lambda m: bool(m.embeds))
    text = everything.embed_text()
    assert "all domains" in text and "4 questions in 2 domains" in text and "hit@1 **75%**" in text
    assert "geology\nhit@1 **100%** (1/1)" in text and "[zoology]" in text
    # After /domain geology, /eval without a domain evaluates geology.
    await (await emulator.invoke_command("domain", {"name": "geology"})).wait_response_done()
    own = await (await emulator.invoke_command("eval", {})).wait_for_followup(lambda m: bool(m.embeds))
    assert "Retrieval evaluation · geology" in own.embed_text() and "None: every expected file" in own.embed_text()


async def test_eval_refuses_what_it_cannot_evaluate(emulator: DiscordEmulator, ragbot: RagBot, config: Config) -> None:
    nothing = await (await emulator.invoke_command("eval", {})).wait_response_done()
    assert nothing.ephemeral and "No domain has a `questions.jsonl`" in nothing.content
    no_questions = await (await emulator.invoke_command("eval", {"domain": "geology"})).wait_response_done()
    assert no_questions.ephemeral and "no `questions.jsonl`" in no_questions.content
    unknown = await (await emulator.invoke_command("eval", {"domain": "astronomy"})).wait_response_done()
    assert unknown.ephemeral and "unknown domain" in unknown.content
    write(Path(config.paths.knowledge_dir) / "zoology" / "questions.jsonl", "{broken\n")
    broken = await emulator.invoke_command("eval", {"domain": "zoology"})
    # Found after the deferral: the reason takes the place of the (ephemeral) "thinking…" message.
    reason = await broken.wait_response_done()
    assert reason.ephemeral and "questions.jsonl:1 is not JSON" in reason.content and broken.followups == []


async def test_eval_answers_asks_each_question_through_the_queue(
    emulator: DiscordEmulator, ragbot: RagBot, config: Config
) -> None:
    rows = [
        {
            "question": "What does the zorblat of Quenth eat?",
            "source": "zorblat.md",
            "answer": "blue moss",
            "key": ["moss"],
            "kind": "single",
        },
        {"question": "How long does the zorblat of Quenth live?", "answer": "", "key": [], "kind": "unanswerable"},
    ]
    write_questions(config, lines=[json.dumps(row) for row in rows])
    inter = await emulator.invoke_command("eval", {"domain": "zoology", "what": "answers"})
    await inter.wait_acknowledged()
    assert inter.deferred
    shown = await inter.wait_for_followup(lambda m: bool(m.embeds))
    assert shown.ephemeral
    text = shown.embed_text()
    assert "Answer evaluation · zoology" in text
    # The echo model repeats the context's first words: no "moss", and nothing about Quenth in its source,
    # so the support check flags it (refused, wrong); the unanswerable question is flagged too (refused, right).
    assert "1 answerable questions: right **0%** · 1 unanswerable: refused **100%**" in text
    assert "• [zoology] What does the zorblat of Quenth eat?\n  → refused: “zorblat.md:1" in text
    assert "How long does the zorblat" not in text
