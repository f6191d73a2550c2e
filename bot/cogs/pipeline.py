"""`/pipeline question`: answer a question, then show its five RAG steps as embeds with two pictures.

The same rendering serves the "Show pipeline" button under any answer (`pipeline_for`). Building the view
reads the answer's own trace; the attention heatmap needs one forward pass of a second copy of the model, so
the whole build runs in the generation queue, one at a time, off the event loop. Both are expensive: they pass
the same admission check as `/ask` (`bot.cogs.admit`: channel, queue room, cooldown).
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
from rag_engine.explain.view import build_pipeline
from rag_engine.records import Answer

if TYPE_CHECKING:
    from bot.client import RagBot


async def pipeline_for(
    bot: RagBot, answer: Answer, asker: Asker
) -> tuple[str, list[discord.Embed], list[discord.File]]:
    """Build (in the generation queue, for `asker`) and lay out the pipeline view of `answer`."""

    def build() -> tuple[object, bytes | None, bytes | None]:
        from rag_engine.explain.figures import attention_png, embedding_map_png

        view = build_pipeline(bot.engine, answer, bot.attention())
        map_png = embedding_map_png(view) if view.query is not None else None
        attention = view.generation.attention
        heat_png = attention_png(attention) if attention is not None else None
        return view, map_png, heat_png

    view, map_png, heat_png = await queued(bot, build, asker)
    return pipeline_message(view, map_png, heat_png)  # type: ignore[arg-type]


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
        content, embeds, files = await pipeline_for(self.bot, answer, asker)
        await interaction.edit_original_response(content=content, embeds=embeds, attachments=files)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(PipelineCog(bot))  # type: ignore[arg-type]
