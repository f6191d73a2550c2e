"""`/domain [name]`: show or switch the knowledge domain this channel searches; the choice is stored.

"all" (or no choice) searches every domain. The choice lives in the bot's SQLite store under the data
directory, so it survives a restart; a server default can come from config (`bot.guild_domains`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.domains import domain_choices

if TYPE_CHECKING:
    from bot.client import RagBot


class DomainCog(commands.Cog):
    def __init__(self, bot: RagBot) -> None:
        self.bot = bot

    @app_commands.command(name="domain", description="Show or switch the knowledge domain of this channel")
    @app_commands.describe(name="The domain to search from now on in this channel, or 'all'")
    @app_commands.autocomplete(name=domain_choices)
    async def domain(self, interaction: discord.Interaction, name: str | None = None) -> None:
        available = self.bot.engine.domains()
        current = self.bot.channel_domain(interaction.channel_id, interaction.guild_id)
        if interaction.channel_id is None or name is None:
            await interaction.response.send_message(
                f"This channel searches **{current or 'all domains'}**. Available: {', '.join(available)}, or `all`.",
                ephemeral=True,
            )
            return
        chosen = None if name == "all" else self.bot.engine.check_domain(name)
        await asyncio.to_thread(self.bot.domains.set, interaction.channel_id, chosen)
        await interaction.response.send_message(
            f"This channel now searches **{chosen or 'all domains'}** (was {current or 'all domains'})."
        )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(DomainCog(bot))  # type: ignore[arg-type]
