"""The bot's command groups, one cog each: ask (also mentions, /norag, /compare), domain, knowledge, help.

Shared here: the one admission check every command, button and mention goes through before it costs anything
(`refusal`, and `admit` for interactions: the channel or DM is one the bot answers in, the queue has room for
this user, the user's cooldown is free), the one place where errors become a short ephemeral message for the
user (the log gets the traceback), and the domain autocomplete.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

import discord
from discord import app_commands

from bot.answering import NOT_HERE, NOT_IN_DMS, AnswerDropped, busy_note, cooldown_note, expired_note
from bot.jobs import JobExpiredError, QueueFullError
from rag_engine.errors import RagError

if TYPE_CHECKING:
    from bot.client import RagBot

log = logging.getLogger("bot")


def bot_of(interaction: discord.Interaction) -> RagBot:
    return cast("RagBot", interaction.client)


def refusal(
    bot: RagBot,
    user_id: int,
    channel: object,
    guild: discord.Guild | None,
    *,
    queued: bool = True,
    cooldown: bool = True,
) -> str | None:
    """Why this user may not do this here and now, or None if they may.

    In order: the bot answers in this channel (or DMs); for work that waits in the generation queue
    (`queued`), the queue has room for one more of this user's jobs; the user's cooldown has a token left
    (`cooldown`; checked last, because it spends the token, which a refusal above must not).
    """
    if not bot.answers_in(channel, guild):
        return NOT_IN_DMS if guild is None else NOT_HERE
    if queued:
        try:
            bot.queue.check_room(user_id)
        except QueueFullError as full:
            return busy_note(full)
    if cooldown:
        wait = bot.cooldowns.check(user_id)
        if wait > 0:
            return cooldown_note(wait)
    return None


async def admit(interaction: discord.Interaction, *, queued: bool = True, cooldown: bool = True) -> bool:
    """`refusal` for an interaction: True if admitted, else the reason is sent (ephemeral) and False."""
    reason = refusal(
        bot_of(interaction),
        interaction.user.id,
        interaction.channel,
        interaction.guild,
        queued=queued,
        cooldown=cooldown,
    )
    if reason is None:
        return True
    await interaction.response.send_message(reason, ephemeral=True)
    return False


def user_message(error: BaseException) -> str:
    """What the user reads for an error: the engine's reason, or a generic sentence (details are logged)."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, QueueFullError):  # the queue filled up between the admission check and the submit
        return busy_note(error)
    if isinstance(error, JobExpiredError):
        return expired_note()
    if isinstance(error, RagError):
        return str(error)
    if isinstance(error, app_commands.CheckFailure):
        return str(error) or "You can't use this command here."
    return "Something went wrong on my side; the details are in the bot's log."


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the user, ephemerally, whatever state the interaction is in; log unexpected errors in full."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(original, AnswerDropped):
        return  # the answer's message already says what happened
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
