"""`/pipeline question`: answer a question, then show its five RAG steps as embeds with two pictures.

The answer streams like `/ask`'s; then its pipeline view replaces it. The engine builds the view
(`Engine.explain`, from the answer's own trace; the attention heatmap needs one forward pass of a second copy of
the model) and `bot.render.pipeline` lays it out with its pictures, through `bot.answering.pipeline_for`, which the
"Show pipeline" button under any answer uses too: the whole build runs in the generation queue, one at a time, off
the event loop. It is expensive: it passes the same admission check as `/ask` (`bot.admission`: channel, queue
room, cooldown).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.answering import InteractionAnswer, pipeline_for, stream_answer
from bot.domains import asked_domain, domain_choices
from bot.render.answer import answer_body
from bot.render.text import truncate
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
        query = self.bot.engine.check(question, asked_domain(interaction, domain), k)
        where = InteractionAnswer(interaction)
        if not await where.start(self.bot, ""):
            return
        answer = await stream_answer(self.bot, query, True, where.edit, asker=where.asker)
        await where.edit(f"{truncate(answer_body(answer), 1500)}\n\n⏳ Drawing the pipeline…")
        content, embeds, files = await pipeline_for(self.bot, answer, where.asker)
        await interaction.edit_original_response(content=content, embeds=embeds, attachments=files)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(PipelineCog(bot))  # type: ignore[arg-type]
