"""`/lab k | mmr | retriever | hops | knnlm`: the RAG lab's experiments on the user's own question.

Each subcommand runs one experiment of `rag_engine.lab` (`run_experiment`, named as in `EXPERIMENTS`) in one
domain: the `domain` option, else the channel's (as `/ask` picks it), else, where the channel searches every
domain, the first one (an experiment compares runs within one domain). The question is checked first
(`Engine.check`), so a typo costs no cooldown token; then the same admission check as `/ask`
(`bot.admission`: channel, queue room, cooldown); then the interaction is deferred ("thinking…") and the
experiment waits its turn in the generation queue (`bot.answering.queued`): it generates several answers, and
one generation runs at a time. The report's picture is drawn there too, off the event loop. Behind other jobs,
the message says its place in the queue, then that it runs; a job that starts at once stays "thinking…". The
response is then edited into the result (`bot.render.lab`): the lines, the two or three sentences that say
what the user is looking at, the picture and the JSON as attachments. A failure replaces the "thinking…" through
the bot's one error boundary (`bot.errors`); nothing here catches.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.admission import admit
from bot.answering import Asker, queued
from bot.domains import asked_domain, domain_choices
from bot.render.lab import lab_message, lab_status
from rag_engine.lab import EXPERIMENTS, run_experiment

if TYPE_CHECKING:
    from bot.client import RagBot

OPTIONS = {
    "question": "What you want to know",
    "domain": "Run it in this domain (default: the channel's)",
}


def summary(name: str) -> str:
    """The experiment's one line from `EXPERIMENTS`, as a command description (Discord allows 100 characters)."""
    text = EXPERIMENTS[name][2]
    return text[:1].upper() + text[1:100]


class LabCog(
    commands.GroupCog,
    group_name="lab",
    group_description="Experiments on your question: when RAG works, when it breaks",
):
    def __init__(self, bot: RagBot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(name="k", description=summary("k"))
    @app_commands.describe(**OPTIONS)
    @app_commands.autocomplete(domain=domain_choices)
    async def dilution(self, interaction: discord.Interaction, question: str, domain: str | None = None) -> None:
        await self.run(interaction, "k", question, domain)

    @app_commands.command(name="mmr", description=summary("mmr"))
    @app_commands.describe(**OPTIONS)
    @app_commands.autocomplete(domain=domain_choices)
    async def redundancy(self, interaction: discord.Interaction, question: str, domain: str | None = None) -> None:
        await self.run(interaction, "mmr", question, domain)

    @app_commands.command(name="retriever", description=summary("retriever"))
    @app_commands.describe(**OPTIONS)
    @app_commands.autocomplete(domain=domain_choices)
    async def retriever(self, interaction: discord.Interaction, question: str, domain: str | None = None) -> None:
        await self.run(interaction, "retriever", question, domain)

    @app_commands.command(name="hops", description=summary("hops"))
    @app_commands.describe(**OPTIONS)
    @app_commands.autocomplete(domain=domain_choices)
    async def hops(self, interaction: discord.Interaction, question: str, domain: str | None = None) -> None:
        await self.run(interaction, "hops", question, domain)

    @app_commands.command(name="knnlm", description=summary("knnlm"))
    @app_commands.describe(**OPTIONS)
    @app_commands.autocomplete(domain=domain_choices)
    async def knnlm(self, interaction: discord.Interaction, question: str, domain: str | None = None) -> None:
        await self.run(interaction, "knnlm", question, domain)

    async def run(self, interaction: discord.Interaction, name: str, question: str, option: str | None) -> None:
        """Check, admit, defer, run experiment `name` in the generation queue, edit the response into its report."""
        engine = self.bot.engine
        domain = asked_domain(interaction, option) or next(iter(engine.domains()), None)
        engine.check(question, domain)  # before admission: a mistyped question or domain spends no token
        if not await admit(interaction):
            return
        await interaction.response.defer(thinking=True)
        # Discord's upload limit for this interaction (it depends on the server's boost level).
        size_limit = interaction.filesize_limit
        # Position edits and the final edit take turns, and none comes after the final one.
        editing, finished = asyncio.Lock(), asyncio.Event()

        async def show_position(position: int) -> None:
            async with editing:
                if not finished.is_set():
                    status = lab_status(name, domain or "", question, position)
                    await interaction.edit_original_response(content=status)

        content, files = await queued(
            self.bot,
            lambda: lab_message(run_experiment(engine, name, question, domain), size_limit),
            Asker.of_interaction(interaction),
            show_position,
        )
        async with editing:
            finished.set()
            await interaction.edit_original_response(content=content, attachments=files)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(LabCog(bot))  # type: ignore[arg-type]
