"""`/lab` over fake models and a fake experiment (tests/lab_fakes.py), through the loopback Discord emulator:
the five subcommands, each deferred and then edited once into the report (lines, explanation, PNG and JSON
attachments) within Discord's limits; the domain option, the channel's domain, the first domain; a picture over
the upload limit left out and said so; bad input refused before admission; a failing experiment reported by the
error boundary; the experiment waiting its turn in the generation queue. The real experiments run through the
emulator in test_lab_e2e.py."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator

import pytest

from bot.client import RagBot
from bot.config import BotConfig
from bot.errors import GENERIC_FAILURE
from bot.render.lab import RUNNING
from rag_engine.config import Config
from rag_engine.lab import EXPERIMENTS
from tests.bot.conftest import GatedGenerator, connected_bot
from tests.discord_emulator import DiscordEmulator, MessageRecord
from tests.discord_emulator.rules import MAX_CONTENT
from tests.lab_fakes import EXPLANATION, use_fake_experiments

QUESTION = "Who described the zorblat?"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def fake_experiments(monkeypatch: pytest.MonkeyPatch) -> None:
    use_fake_experiments(monkeypatch)


@pytest.fixture(autouse=True)
async def no_rule_broken(emulator: DiscordEmulator) -> AsyncIterator[None]:
    yield
    assert emulator.violations == []


def has_report(message: MessageRecord) -> bool:
    return bool(message.files)


def report_json(message: MessageRecord, name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(message.file(f"lab-{name}.json").data)
    return data


async def test_lab_is_one_group_with_a_subcommand_per_experiment(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    lab = next(c for c in emulator.global_commands.values() if c["name"] == "lab")
    subcommands = {o["name"]: o for o in lab["options"]}
    assert list(subcommands) == list(EXPERIMENTS)
    for name, (_, _, summary) in EXPERIMENTS.items():
        assert subcommands[name]["description"].lower() == summary.lower()[:100]
        options = {o["name"]: o for o in subcommands[name]["options"]}
        assert options["question"]["required"] and options["domain"].get("autocomplete")


@pytest.mark.parametrize("name", list(EXPERIMENTS))
async def test_each_subcommand_defers_then_shows_the_report_with_its_picture(
    emulator: DiscordEmulator, ragbot: RagBot, name: str
) -> None:
    inter = await emulator.invoke_command(f"lab {name}", {"question": QUESTION, "domain": "zoology"})
    await inter.wait_acknowledged()
    assert inter.deferred and inter.ack_latency is not None and inter.ack_latency < 3
    shown = await inter.wait_response_done(has_report)
    assert not shown.ephemeral and len(shown.content) <= MAX_CONTENT
    assert shown.content.startswith(f"**RAG lab · {name} · zoology**\n**Question:** {QUESTION}\n\n```\n")
    assert "best passage: zorblat.md" in shown.content and shown.content.endswith(EXPLANATION)
    assert shown.file(f"lab-{name}.png").data.startswith(PNG_MAGIC)
    data = report_json(shown, name)
    assert (data["experiment"], data["domain"], data["question"]) == (name, "zoology", QUESTION)
    # The engine really ran: one answer per configured k, each shown on a line.
    answers = data["answers"]
    assert isinstance(answers, list) and len(answers) == len(ragbot.engine.config.lab.dilution_ks)
    assert all(f"k={row['k']:<2} {row['text']}" in shown.content for row in answers)
    assert shown.edit_count == 1  # started at once: "thinking…" until the one edit into the report


async def test_the_domain_is_the_channels_else_the_first(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    first = await (await emulator.invoke_command("lab k", {"question": QUESTION})).wait_response_done(has_report)
    assert report_json(first, "k")["domain"] == ragbot.engine.domains()[0]
    await (await emulator.invoke_command("domain", {"name": "geology"})).wait_response_done()
    chosen = await (await emulator.invoke_command("lab k", {"question": QUESTION})).wait_response_done(has_report)
    assert report_json(chosen, "k")["domain"] == "geology"


async def test_a_picture_over_the_upload_limit_is_left_out_and_long_lines_are_cut(
    emulator: DiscordEmulator, ragbot: RagBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_fake_experiments(monkeypatch, k="run_big")  # a 3 MB picture, 60 more lines than fit
    emulator.attachment_size_limit = 1_000_000
    question = "@everyone who described the zorblat?"  # mentions in the question never ping
    inter = await emulator.invoke_command("lab k", {"question": question, "domain": "zoology"})
    shown = await inter.wait_response_done(has_report)
    assert [f.filename for f in shown.files] == ["lab-k.json"]
    assert "lab-k.png is 3.0 MB, over this server's upload limit of 1.0 MB" in shown.content
    assert len(shown.content) <= MAX_CONTENT and "more lines (the attached JSON has everything)" in shown.content
    assert EXPLANATION in shown.content


@pytest.mark.parametrize(
    ("options", "reason"),
    [({"question": QUESTION, "domain": "astronomy"}, "unknown domain"), ({"question": "   "}, "question")],
)
async def test_bad_input_is_refused_at_once_and_nothing_runs(
    emulator: DiscordEmulator, ragbot: RagBot, monkeypatch: pytest.MonkeyPatch, options: dict[str, str], reason: str
) -> None:
    use_fake_experiments(monkeypatch, k="run_broken")
    inter = await emulator.invoke_command("lab k", options)
    refused = await inter.wait_response_done()
    assert refused.ephemeral and not inter.deferred and reason in refused.content.lower()


async def test_a_failing_experiment_replaces_the_thinking_message(
    emulator: DiscordEmulator, ragbot: RagBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_fake_experiments(monkeypatch, mmr="run_broken")
    inter = await emulator.invoke_command("lab mmr", {"question": QUESTION, "domain": "zoology"})
    shown = await inter.wait_response_done(lambda m: GENERIC_FAILURE in m.content)
    assert inter.deferred and not shown.files


async def test_the_experiment_waits_its_turn_in_the_generation_queue(
    emulator: DiscordEmulator, bot_config: Config, bot_settings: BotConfig
) -> None:
    gated = GatedGenerator()
    short = dataclasses.replace(bot_config, lab=dataclasses.replace(bot_config.lab, dilution_ks=(1, 2)))
    async with connected_bot(emulator, short, bot_settings, generator=gated) as bot:
        running = await emulator.invoke_command("ask", {"question": QUESTION, "domain": "zoology"})
        await gated.next_started()
        lab = await emulator.invoke_command("lab k", {"question": QUESTION, "domain": "zoology"}, user="bob")
        waiting = await lab.wait_response_done(lambda m: "In the queue: #1" in m.content)
        assert waiting.content.startswith(f"**RAG lab · k · zoology**\n**Question:** {QUESTION}")
        assert len(bot.queue) == 2 and len(gated.prompts) == 1  # not one of the experiment's answers started
        gated.release()
        await running.wait_response_done(lambda m: bool(m.embeds))
        shown = await lab.wait_response_done(has_report)
        assert report_json(shown, "k")["experiment"] == "k"
        assert len(gated.prompts) == 3  # the answer, then the experiment's two (k = 1, 2)
        assert any(RUNNING in content for content in shown.content_history)
