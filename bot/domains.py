"""Which domain a command asks about, and the domain autocomplete every command with a `domain` option uses.

A command's `domain` option wins ("all" searches every domain); without it, the channel's own domain (chosen
with `/domain`, else the server's default from `bot.guild_domains`, else every domain: `RagBot.channel_domain`).
Whether the name is a known domain is the engine's check (`Engine.check`, `Engine.check_domain`).
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.admission import bot_of

ALL_DOMAINS = "all"


def asked_domain(interaction: discord.Interaction, option: str | None) -> str | None:
    """The domain named by a command's `domain` option, else the channel's; None searches every domain."""
    if option:
        return None if option == ALL_DOMAINS else option
    return bot_of(interaction).channel_domain(interaction.channel_id, interaction.guild_id)


async def domain_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    names = bot_of(interaction).engine.domains()
    return [app_commands.Choice(name=n, value=n) for n in names if current.lower() in n.lower()][:25]
