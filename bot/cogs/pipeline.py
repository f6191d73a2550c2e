"""`/pipeline question`: answer a question, then show its five RAG steps as embeds with two pictures.

The engine builds the view (`Engine.explain`, from the answer's own trace; the attention heatmap needs one
forward pass of a second copy of the model) and `bot.pipeline_render` lays it out with its pictures, so the
whole build runs in the generation queue, one at a time, off the event loop (the "Show pipeline" button
under any answer does the same). Both are expensive: they pass the same admission check as
`/ask` (`bot.cogs.admit`: channel, queue room, cooldown).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.answering import Asker, check, queued, stream_answer
from bot.cogs import admit, domain_choices
from bot.pipeline_render import pipeline_message
from rag_engine.config import MAX_K

if TYPE_CHECKING:
    from bot.client import RagBot


class PipelineCog(commands.Cog):
    def __init__(self, bot: RagBot) -> None:
        self.bot = bot

    @app_commands.command(name="pipeline", description="Walk through the five RAG steps for one question")
    @app_commands.describe(
        question="What you want to know",
        domain="Search this domain (default: the channel's)",
        k="How many passages to retrieve (default from config)",
    )
    @app_commands.autocomplete(domain=domain_choices)
    async def pipeline(
        self,
        interaction: discord.Interaction,
        question: str,
        domain: str | None = None,
        k: app_commands.Range[int, 1, MAX_K] | None = None,
    ) -> None:
        if domain is None:
            chosen = self.bot.channel_domain(interaction.channel_id, interaction.guild_id)
        else:
            chosen = None if domain == "all" else domain
        question = check(self.bot, question, chosen, k)
        if not await admit(interaction):
            return
        await interaction.response.defer(thinking=True)

        async def edit(text: str) -> None:
            await interaction.edit_original_response(content=text)

        asker = Asker.of_interaction(interaction)
        answer = await stream_answer(self.bot, question, chosen, k, True, edit, asker=asker)
        await interaction.edit_original_response(content=f"{answer.text[:1500]}\n\n⏳ Drawing the pipeline…")
        engine = self.bot.engine
        content, embeds, files = await queued(self.bot, lambda: pipeline_message(engine.explain(answer)), asker)
        await interaction.edit_original_response(content=content, embeds=embeds, attachments=files)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(PipelineCog(bot))  # type: ignore[arg-type]
