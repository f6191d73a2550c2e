"""Questions: `/ask`, `/norag`, `/compare`, and a mention of the bot with a question (answered as a reply).

Each checks the question once (`Engine.check` → `Query`; a bad one is refused before anything else) and hands
it to `bot.answering.deliver_answer`, which admits the user, acknowledges at once (Discord's 3-second rule),
streams the answer by editing one message and ends with the sources and the buttons. A mention's failures
go to the same error boundary as commands (`bot.errors.report`), shown in the bot's reply.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.answering import InteractionAnswer, ReplyAnswer, deliver_answer
from bot.domains import asked_domain, domain_choices
from bot.errors import report
from bot.views import AnswerView
from rag_engine.config import MAX_K
from rag_engine.errors import RagError

if TYPE_CHECKING:
    from bot.client import RagBot

# `/ask mode:` — what ranks the passages; the default is the config's `retrieval.mode`.
MODE_CHOICES = [
    app_commands.Choice(name="dense: nearest embeddings (meaning)", value="dense"),
    app_commands.Choice(name="bm25: shared words", value="bm25"),
    app_commands.Choice(name="hybrid: both, fused", value="hybrid"),
]
# `/ask hops:` — retrieval rounds; the default is the config's `retrieval.hops`.
HOPS_CHOICES = [
    app_commands.Choice(name="1: one search", value=1),
    app_commands.Choice(name="2: search again for what the first search leaves missing (multi-hop)", value=2),
]


class AskCog(commands.Cog):
    def __init__(self, bot: RagBot) -> None:
        self.bot = bot
        self.buttons = partial(AnswerView, bot)

    @app_commands.command(name="ask", description="Answer a question from this channel's documents, with sources")
    @app_commands.describe(
        question="What you want to know",
        k="How many passages to retrieve (default from config)",
        domain="Search this domain instead of the channel's (or 'all')",
        mode="What ranks the passages: embeddings, words, or both (default from config)",
        hops="Search rounds: 2 searches again for what the first search leaves missing (default from config)",
    )
    @app_commands.autocomplete(domain=domain_choices)
    @app_commands.choices(mode=MODE_CHOICES)
    @app_commands.choices(hops=HOPS_CHOICES)
    async def ask(
        self,
        interaction: discord.Interaction,
        question: str,
        k: app_commands.Range[int, 1, MAX_K] | None = None,
        domain: str | None = None,
        mode: app_commands.Choice[str] | None = None,
        hops: app_commands.Choice[int] | None = None,
    ) -> None:
        ranked_by = mode.value if mode is not None else None
        rounds = hops.value if hops is not None else None
        query = self.bot.engine.check(question, asked_domain(interaction, domain), k, ranked_by, rounds)
        await deliver_answer(self.bot, InteractionAnswer(interaction), query, buttons=self.buttons)

    @app_commands.command(name="norag", description="Answer from the model's weights alone, without documents")
    @app_commands.describe(question="What you want to know")
    async def norag(self, interaction: discord.Interaction, question: str) -> None:
        query = self.bot.engine.check(question)
        await deliver_answer(self.bot, InteractionAnswer(interaction), query, use_rag=False, buttons=self.buttons)

    @app_commands.command(name="compare", description="The same question with and without RAG, side by side")
    @app_commands.describe(question="What you want to know", domain="Search this domain (default: the channel's)")
    @app_commands.autocomplete(domain=domain_choices)
    async def compare(self, interaction: discord.Interaction, question: str, domain: str | None = None) -> None:
        query = self.bot.engine.check(question, asked_domain(interaction, domain))
        await deliver_answer(self.bot, InteractionAnswer(interaction), query, compare=True)

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
            query = self.bot.engine.check(question, domain)
        except RagError as exc:
            await message.reply(f"{exc}. Mention me with a question, or use `/ask`.")
            return
        where = ReplyAnswer(message)
        try:
            await deliver_answer(self.bot, where, query, buttons=self.buttons)
        except Exception as exc:  # the mention's error boundary: the reason in the reply, the traceback logged
            await report(where.reply, exc)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(AskCog(bot))  # type: ignore[arg-type]
