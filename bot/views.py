"""The buttons under an answer: "Answer without RAG", "Show pipeline", "More sources" (and the source pager).

Each view holds the `Answer` it was made for, so a click shows exactly what happened for that question.
Answering again without RAG checks the question again (its domain folder may be gone since) and then goes
through the same flow as `/norag` (`bot.answering.deliver_answer`); "Show pipeline" passes the same admission
check as `/ask`. Both views are `ReportingView`s: a failing button reaches the same error boundary as commands
(`bot.errors.report`) and never leaves "thinking…" on screen. Formatting is `bot.render`'s.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import discord

from bot.admission import admit
from bot.answering import Asker, InteractionAnswer, deliver_answer, pipeline_for
from bot.errors import ReportingView
from bot.render.sources import source_pages, sources_embed
from rag_engine.records import Answer

if TYPE_CHECKING:
    from bot.client import RagBot

# Buttons stay usable this long after the answer (views live in memory, not across restarts).
VIEW_TIMEOUT_SECONDS = 900.0


class AnswerView(ReportingView):
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
        query = self.bot.engine.check(self.answer.question, self.answer.domain)
        await deliver_answer(
            self.bot, InteractionAnswer(interaction), query, use_rag=False, buttons=partial(AnswerView, self.bot)
        )

    @discord.ui.button(label="Show pipeline", style=discord.ButtonStyle.secondary, custom_id="ragscope:pipeline")
    async def pipeline(self, interaction: discord.Interaction, button: discord.ui.Button[AnswerView]) -> None:
        if not await admit(interaction):
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        content, embeds, files = await pipeline_for(self.bot, self.answer, Asker.of_interaction(interaction))
        await interaction.followup.send(content, embeds=embeds, files=files, ephemeral=True)

    @discord.ui.button(label="More sources", style=discord.ButtonStyle.secondary, custom_id="ragscope:sources")
    async def more_sources(self, interaction: discord.Interaction, button: discord.ui.Button[AnswerView]) -> None:
        per_page = self.bot.settings.sources_per_page
        pages = source_pages(self.answer, per_page)
        page = 1 if pages > 1 else 0
        view = SourcePager(self.answer, per_page, page)
        await interaction.response.send_message(
            embed=sources_embed(self.answer, page, per_page), view=view, ephemeral=True
        )


class SourcePager(ReportingView):
    """◀ ▶ through the retrieved passages, editing its own (ephemeral) message."""

    def __init__(self, answer: Answer, per_page: int, page: int) -> None:
        super().__init__(timeout=VIEW_TIMEOUT_SECONDS)
        self.answer = answer
        self.per_page = per_page
        self.page = page
        self.pages = source_pages(answer, per_page)
        self._enable()

    def _enable(self) -> None:
        self.previous.disabled = self.page <= 0
        self.next.disabled = self.page >= self.pages - 1

    async def _show(self, interaction: discord.Interaction, page: int) -> None:
        self.page = max(0, min(page, self.pages - 1))
        self._enable()
        await interaction.response.edit_message(embed=sources_embed(self.answer, self.page, self.per_page), view=self)

    @discord.ui.button(label="◀", style=discord.ButtonStyle.secondary, custom_id="ragscope:sources:prev")
    async def previous(self, interaction: discord.Interaction, button: discord.ui.Button[SourcePager]) -> None:
        await self._show(interaction, self.page - 1)

    @discord.ui.button(label="▶", style=discord.ButtonStyle.secondary, custom_id="ragscope:sources:next")
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button[SourcePager]) -> None:
        await self._show(interaction, self.page + 1)
