"""The bot's command groups, one cog each: ask (also mentions, /norag, /compare), domain, knowledge, help.

Shared here: the one place where errors become a short ephemeral message for the user (the log gets the
traceback), and the domain autocomplete.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

import discord
from discord import app_commands

from rag_engine.errors import RagError

if TYPE_CHECKING:
    from bot.client import RagBot

log = logging.getLogger("bot")


def bot_of(interaction: discord.Interaction) -> RagBot:
    return cast("RagBot", interaction.client)


def user_message(error: BaseException) -> str:
    """What the user reads for an error: the engine's reason, or a generic sentence (details are logged)."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, RagError):
        return str(error)
    if isinstance(error, app_commands.CheckFailure):
        return str(error) or "You can't use this command here."
    return "Something went wrong on my side; the details are in the bot's log."


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the user, ephemerally, whatever state the interaction is in; log unexpected errors in full."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if not isinstance(original, RagError | app_commands.CheckFailure):
        log.error("command %s failed", getattr(interaction.command, "name", "?"), exc_info=original)
    text = user_message(error)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not tell the user about an error", exc_info=True)


async def domain_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    names = bot_of(interaction).engine.domains()
    return [app_commands.Choice(name=n, value=n) for n in names if current.lower() in n.lower()][:25]
