"""The one admission check every expensive command, button and mention passes before it costs anything.

In order: the bot answers in this channel (or in DMs, if `bot.allow_dms`); for work that waits in the
generation queue, the queue has room for one more of this user's jobs; the user's cooldown has a token left
(checked last, because it spends the token, which a refusal above must not). The input itself is checked
before this (`Engine.check`), so a mistyped question costs no token either. A refusal is an answer, not an
error: the user reads why (ephemeral for interactions), and nothing is queued.

Not here: answering once admitted (`bot.answering`), the cooldown's and the queue's own bookkeeping
(`bot.cooldown`, `bot.jobs`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import discord

from bot.errors import QueueFullError

if TYPE_CHECKING:
    from bot.client import RagBot

NOT_HERE = "I don't answer questions in this channel."
NOT_IN_DMS = "I don't answer in direct messages; ask me in a server channel."


def cooldown_note(wait_seconds: float) -> str:
    return f"Slow down a little: you can ask again in {wait_seconds:.0f} s."


def refusal(
    bot: RagBot,
    user_id: int,
    channel: object,
    guild: discord.Guild | None,
    *,
    queued: bool = True,
    cooldown: bool = True,
) -> str | None:
    """Why this user may not do this here and now, or None if they may (`queued`: the work waits in the
    generation queue; `cooldown`: it spends a cooldown token)."""
    if not bot.answers_in(channel, guild):
        return NOT_IN_DMS if guild is None else NOT_HERE
    if queued:
        try:
            bot.answers.check_room(user_id)
        except QueueFullError as full:
            return str(full)
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


def bot_of(interaction: discord.Interaction) -> RagBot:
    """The bot an interaction came to (discord.py types it as any client)."""
    return cast("RagBot", interaction.client)
