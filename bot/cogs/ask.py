"""Questions: `/ask`, `/norag`, `/compare`, and a mention of the bot with a question (answered as a reply).

Every path checks the input, then admits the user (`bot.cogs.refusal`: channel, queue room, cooldown),
acknowledges at once (Discord's 3-second rule), then queues the engine work and streams the answer by editing
one message; the final message carries the sources (Euclidean distances) and the buttons. The streaming and
queueing are `answering.py`'s.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.answering import AnswerDropped, Asker, check, comparison_content, final_content, stream_answer
from bot.cogs import admit, domain_choices, refusal, user_message
from bot.views import AnswerView
from rag_engine.config import MAX_K
from rag_engine.errors import RagError

if TYPE_CHECKING:
    from bot.client import RagBot

log = logging.getLogger(__name__)

# `/ask mode:` — what ranks the passages; the default is the config's `retrieval.mode`.
MODE_CHOICES = [
    app_commands.Choice(name="dense: nearest embeddings (meaning)", value="dense"),
    app_commands.Choice(name="bm25: shared words", value="bm25"),
    app_commands.Choice(name="hybrid: both, fused", value="hybrid"),
]


class AskCog(commands.Cog):
    def __init__(self, bot: RagBot) -> None:
        self.bot = bot

    def _domain(self, interaction: discord.Interaction, domain: str | None) -> str | None:
        if domain:
            return None if domain == "all" else domain
        return self.bot.channel_domain(interaction.channel_id, interaction.guild_id)

    async def _answer_interaction(
        self,
        interaction: discord.Interaction,
        question: str,
        domain: str | None,
        k: int | None,
        use_rag: bool,
        mode: str | None = None,
    ) -> None:
        chosen = self._domain(interaction, domain)
        question = check(self.bot, question, chosen, k)
        if not await admit(interaction):
            return
        await interaction.response.defer(thinking=True)

        async def edit(text: str) -> None:
            await interaction.edit_original_response(content=text)

        asker = Asker.of_interaction(interaction)
        answer = await stream_answer(self.bot, question, chosen, k, use_rag, edit, mode, asker=asker)
        parts = final_content(answer)
        embeds = [render.sources_embed(answer, 0, self.bot.config.bot.sources_per_page)] if answer.hits else []
        await interaction.edit_original_response(content=parts[0], embeds=embeds, view=AnswerView(self.bot, answer))
        for part in parts[1:]:
            await interaction.followup.send(part)

    @app_commands.command(name="ask", description="Answer a question from this channel's documents, with sources")
    @app_commands.describe(
        question="What you want to know",
        k="How many passages to retrieve (default from config)",
        domain="Search this domain instead of the channel's (or 'all')",
        mode="What ranks the passages: embeddings, words, or both (default from config)",
    )
    @app_commands.autocomplete(domain=domain_choices)
    @app_commands.choices(mode=MODE_CHOICES)
    async def ask(
        self,
        interaction: discord.Interaction,
        question: str,
        k: app_commands.Range[int, 1, MAX_K] | None = None,
        domain: str | None = None,
        mode: app_commands.Choice[str] | None = None,
    ) -> None:
        ranked_by = mode.value if mode is not None else None
        await self._answer_interaction(interaction, question, domain, k, use_rag=True, mode=ranked_by)

    @app_commands.command(name="norag", description="Answer from the model's weights alone, without documents")
    @app_commands.describe(question="What you want to know")
    async def norag(self, interaction: discord.Interaction, question: str) -> None:
        await self._answer_interaction(interaction, question, None, None, use_rag=False)

    @app_commands.command(name="compare", description="The same question with and without RAG, side by side")
    @app_commands.describe(question="What you want to know", domain="Search this domain (default: the channel's)")
    @app_commands.autocomplete(domain=domain_choices)
    async def compare(self, interaction: discord.Interaction, question: str, domain: str | None = None) -> None:
        chosen = self._domain(interaction, domain)
        question = check(self.bot, question, chosen, None)
        if not await admit(interaction):
            return
        await interaction.response.defer(thinking=True)
        asker = Asker.of_interaction(interaction)
        shown: dict[str, str] = {"rag": "…", "norag": "…"}

        def side_by_side() -> str:
            return comparison_content(shown["rag"], shown["norag"], chosen)

        async def edit_side(side: str, text: str) -> None:
            shown[side] = text
            await interaction.edit_original_response(content=side_by_side())

        with_rag = await stream_answer(
            self.bot, question, chosen, None, True, lambda t: edit_side("rag", t), asker=asker
        )
        note = render.check_note(with_rag) if with_rag.covered else render.not_covered_note(with_rag)
        shown["rag"] = with_rag.text + ("\n" + note if note else "")
        without = await stream_answer(
            self.bot, question, chosen, None, False, lambda t: edit_side("norag", t), asker=asker
        )
        shown["norag"] = without.text
        embeds = [render.sources_embed(with_rag, 0, self.bot.config.bot.sources_per_page)] if with_rag.hits else []
        await interaction.edit_original_response(content=side_by_side(), embeds=embeds)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """A mention of the bot with a question does what `/ask` does, as a reply."""
        me = self.bot.user
        if me is None or message.author.bot or not me.mentioned_in(message) or message.mention_everyone:
            return
        if not self.bot.answers_in(message.channel, message.guild):
            return
        question = message.content.replace(f"<@{me.id}>", "").replace(f"<@!{me.id}>", "").strip()
        guild_id = message.guild.id if message.guild else None
        domain = self.bot.channel_domain(message.channel.id, guild_id)
        try:
            question = check(self.bot, question, domain, None)
        except RagError as exc:
            await message.reply(f"{exc}. Mention me with a question, or use `/ask`.")
            return
        reason = refusal(self.bot, message.author.id, message.channel, message.guild)
        if reason is not None:
            await message.reply(reason)
            return
        reply = await message.reply(f"**{'RAG answer · ' + (domain or 'all domains')}**\n…")

        async def edit(text: str) -> None:
            await reply.edit(content=text)

        try:
            asker = Asker.of_reply(message.author.id, reply)
            answer = await stream_answer(self.bot, question, domain, None, True, edit, asker=asker)
            parts = final_content(answer)
            embeds = [render.sources_embed(answer, 0, self.bot.config.bot.sources_per_page)] if answer.hits else []
            await reply.edit(content=parts[0], embeds=embeds, view=AnswerView(self.bot, answer))
            for part in parts[1:]:
                await message.channel.send(part)
        except AnswerDropped:
            return  # the reply already says why
        except Exception as exc:  # the one boundary for mentions: a short reason in the reply, traceback logged
            if not isinstance(exc, RagError):
                log.error("answering a mention failed", exc_info=exc)
            await reply.edit(content=user_message(exc))


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(AskCog(bot))  # type: ignore[arg-type]
