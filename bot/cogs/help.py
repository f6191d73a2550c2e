"""`/help`: what the bot does, how RAG works in five lines, and the commands."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot import render


class HelpCog(commands.Cog):
    @app_commands.command(name="help", description="What this bot does and how RAG works")
    async def help(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(render.HELP_TEXT, ephemeral=True)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(HelpCog())
