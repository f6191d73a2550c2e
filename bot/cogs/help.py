"""`/help`: what the bot does, how RAG works in five lines, and every command (each cog's, and the buttons)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

HELP_TEXT = """\
**ragscope** answers questions from this server's documents, and shows how it found the answer.
How RAG (retrieval-augmented generation) works, in five steps:
1. Every document is cut into passages and each passage becomes a vector (its *embedding*).
2. Your question becomes a vector the same way.
3. The passages nearest to it are retrieved (Euclidean distance: lower is closer); too-far ones are dropped.
4. Those passages and your question are put together into one prompt.
5. A small language model writes the answer from that prompt, token by token.
Then every number and name of the answer is looked up in those passages: what they do not hold is marked ⚠.

**Commands**
`/ask` (or mention me) — answer from the documents of this channel's domain
`/norag` — the model alone, without documents (what it "knows" from its weights)
`/compare` — both answers, with and without RAG, side by side
`/pipeline` — the five steps for one question: embedding map, distance table, prompt, attention heatmap
`/lab k|mmr|retriever|hops|knnlm` — experiments on your question: when RAG works, when it breaks
`/domain` — show or set which domain this channel asks about
`/eval` — how well this domain's test questions are answered (`what: retrieval` or `answers`)
`/knowledge status` — what is indexed: files, passages, skipped or failed files
`/knowledge upload` — add a document to a domain (Manage Server or a knowledge role)
`/knowledge reindex` — rebuild a domain's index (same permission)
`/help` — this message
Under an answer: **Answer without RAG**, **Show pipeline** (the five steps, with pictures), **More sources**."""


class HelpCog(commands.Cog):
    @app_commands.command(name="help", description="What this bot does and how RAG works")
    async def help(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(HELP_TEXT, ephemeral=True)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(HelpCog())
