"""The buttons under an answer: "Answer without RAG", "Show pipeline", "More sources" (and the source pager).

Each view holds the `Answer` it was made for, so a click shows exactly what happened for that question.
Answering again without RAG goes through the same queue and streaming as `/norag`; both expensive buttons
(that one and "Show pipeline") pass the same admission check as `/ask` (`bot.cogs.admit`), and their errors
reach the same error boundary as commands (`bot.cogs.report_error`). Formatting is `render.py`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord

from bot import render
from bot.answering import Asker, final_content, queued, stream_answer
from bot.cogs import admit, report_error
from bot.pipeline_render import pipeline_message
from rag_engine.records import Answer

if TYPE_CHECKING:
    from bot.client import RagBot

# Buttons stay usable this long after the answer (views live in memory, not across restarts).
VIEW_TIMEOUT_SECONDS = 900.0


class AnswerView(discord.ui.View):
    def __init__(self, bot: RagBot, answer: Answer) -> None:
        super().__init__(timeout=VIEW_TIMEOUT_SECONDS)
        self.bot = bot
        self.answer = answer
        if not answer.used_rag:
            self.remove_item(self.without_rag)
        if not answer.hits:
            self.remove_item(self.more_sources)

    @discord.ui.button(label="Answer without RAG", style=discord.ButtonStyle.secondary, custom_id="ragscope:norag")
    async def without_rag(self, interaction: discord.Interaction, button: discord.ui.Button[AnswerView]) -> None:
        if not await admit(interaction):
            return
        await interaction.response.defer(thinking=True)

        async def edit(text: str) -> None:
            await interaction.edit_original_response(content=text)

        asker = Asker.of_interaction(interaction)
        answer = await stream_answer(self.bot, self.answer.question, self.answer.domain, None, False, edit, asker=asker)
        parts = final_content(answer)
        await interaction.edit_original_response(content=parts[0])
        for part in parts[1:]:
            await interaction.followup.send(part)

    @discord.ui.button(label="Show pipeline", style=discord.ButtonStyle.secondary, custom_id="ragscope:pipeline")
    async def pipeline(self, interaction: discord.Interaction, button: discord.ui.Button[AnswerView]) -> None:
        if not await admit(interaction):
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        engine, answer, asker = self.bot.engine, self.answer, Asker.of_interaction(interaction)
        # Built and drawn in the generation queue, off the event loop, as `/pipeline` does.
        content, embeds, files = await queued(self.bot, lambda: pipeline_message(engine.explain(answer)), asker)
        await interaction.followup.send(content, embeds=embeds, files=files, ephemeral=True)

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any]) -> None:
        # discord.py's default only logs: the user would be left with a "thinking" message forever.
        await report_error(interaction, error)

    @discord.ui.button(label="More sources", style=discord.ButtonStyle.secondary, custom_id="ragscope:sources")
    async def more_sources(self, interaction: discord.Interaction, button: discord.ui.Button[AnswerView]) -> None:
        per_page = self.bot.config.bot.sources_per_page
        pages = render.source_pages(self.answer, per_page)
        page = 1 if pages > 1 else 0
        view = SourcePager(self.answer, per_page, page)
        await interaction.response.send_message(
            embed=render.sources_embed(self.answer, page, per_page), view=view, ephemeral=True
        )


class SourcePager(discord.ui.View):
    """◀ ▶ through the retrieved passages, editing its own (ephemeral) message."""

    def __init__(self, answer: Answer, per_page: int, page: int) -> None:
        super().__init__(timeout=VIEW_TIMEOUT_SECONDS)
        self.answer = answer
        self.per_page = per_page
        self.page = page
        self.pages = render.source_pages(answer, per_page)
        self._enable()

    def _enable(self) -> None:
        self.previous.disabled = self.page <= 0
        self.next.disabled = self.page >= self.pages - 1

    async def _show(self, interaction: discord.Interaction, page: int) -> None:
        self.page = max(0, min(page, self.pages - 1))
        self._enable()
        await interaction.response.edit_message(
            embed=render.sources_embed(self.answer, self.page, self.per_page), view=self
        )

    @discord.ui.button(label="◀", style=discord.ButtonStyle.secondary, custom_id="ragscope:sources:prev")
    async def previous(self, interaction: discord.Interaction, button: discord.ui.Button[SourcePager]) -> None:
        await self._show(interaction, self.page - 1)

    @discord.ui.button(label="▶", style=discord.ButtonStyle.secondary, custom_id="ragscope:sources:next")
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button[SourcePager]) -> None:
        await self._show(interaction, self.page + 1)
