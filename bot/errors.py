"""The bot's one error boundary, and its own `RagError`s.

Every surface of the bot ends in `report()`: slash commands through `ReportingTree` (the `CommandTree` the bot
is built with), buttons through `ReportingView` (the base of every view with buttons), mentions through the
ask cog's handler. The user gets a short reason, ephemeral where Discord allows it: a `RagError`'s own text
(it is written for users), anything else a generic sentence; the traceback of anything that is not a
`RagError` goes to the log. A "thinking…" message is never left on screen: when the interaction was deferred
and nothing replaced the placeholder yet, the reason replaces it.

The bot's errors carry the sentence the user reads (the queue's two say when to come back), so the boundary
needs no table of wordings.

Not here: the refusals of the admission check (`bot.admission`), which are answers, not errors.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import discord
from discord import app_commands

from rag_engine.errors import RagError

log = logging.getLogger("bot")

GENERIC_FAILURE = "Something went wrong on my side; the details are in the bot's log."


class AnswerDropped(RagError):
    """The job was not run and its message already says why; the error boundary sends nothing more."""


class QueueFullError(RagError):
    """A job over the queue's bound (this user's, or the total): refused before it waits at all. Its text is
    what the user reads, with the queue's estimate of when a place frees up."""

    def __init__(self, wait_seconds: float, *, per_user: bool, limit: int) -> None:
        self.wait_seconds = wait_seconds
        self.per_user = per_user
        self.limit = limit
        if per_user:
            why = f"you already have {limit} questions in the queue"
        else:
            why = f"{limit} questions are already in the queue"
        super().__init__(f"⏳ I'm busy: {why}. Try again in {math.ceil(wait_seconds)} s.")


class JobExpiredError(RagError):
    """A job whose deadline would pass before it could finish; dropped before it ran."""

    def __init__(self) -> None:
        super().__init__(
            "⌛ This question waited in the queue until Discord would no longer let me answer it "
            "(15 minutes). Please ask again."
        )


class WorkerError(RagError):
    """An answer worker (another process, `bot.worker`) could not answer: the reason it sent (a `RagError`'s
    text, written for users) or, for anything else, the generic sentence; the traceback is in its log."""


class QueueUnavailableError(RagError):
    """The Redis queue between this gateway and its answer workers cannot be reached."""

    def __init__(self) -> None:
        super().__init__("⚠️ I can't reach my answer workers right now (the queue is down). Please try again soon.")


class UploadError(RagError):
    """An upload was refused; `str(err)` tells the uploader why."""


def user_message(error: BaseException) -> str:
    """What the user reads for an error: a `RagError`'s (or a failed check's) reason, else a generic sentence."""
    error = _original(error)
    if isinstance(error, RagError):
        return str(error)
    if isinstance(error, app_commands.CheckFailure):
        return str(error) or "You can't use this command here."
    return GENERIC_FAILURE


def _original(error: BaseException) -> BaseException:
    """The exception a command raised, not discord.py's wrapper around it."""
    return error.original if isinstance(error, app_commands.CommandInvokeError) else error


async def report(where: discord.Interaction | discord.Message | None, error: BaseException) -> None:
    """Tell the user why `error` happened, and log it in full unless it is a `RagError`.

    `where` is the interaction (in whatever state it is: not answered yet, deferred, answered), or the bot's
    own reply to a mention (edited to say why), or None when there is nowhere to say it (only logged).
    """
    original = _original(error)
    if isinstance(original, AnswerDropped):
        return  # the answer's message already says what happened
    if not isinstance(original, RagError | app_commands.CheckFailure):
        log.error("%s failed", _what(where), exc_info=original)
    if where is None:
        return
    text = user_message(original)
    try:
        if isinstance(where, discord.Message):
            await where.edit(content=text, embeds=[], view=None)
        else:
            await _tell(where, text)
    except discord.HTTPException:
        log.warning("could not tell the user about an error", exc_info=True)


async def _tell(interaction: discord.Interaction, text: str) -> None:
    if not interaction.response.is_done():
        await interaction.response.send_message(text, ephemeral=True)
        return
    if interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
        original = await interaction.original_response()
        if original.flags.loading:  # still "thinking…": the reason takes its place
            await interaction.edit_original_response(content=text, embeds=[], attachments=[], view=None)
            return
    await interaction.followup.send(text, ephemeral=True)


def _what(where: discord.Interaction | discord.Message | None) -> str:
    if isinstance(where, discord.Interaction):
        command = getattr(where.command, "name", None)
        return f"command {command}" if command else "a button"
    return "answering a mention"


class ReportingTree(app_commands.CommandTree[Any]):
    """The bot's command tree: every slash command's error goes to `report`."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await report(interaction, error)


class ReportingView(discord.ui.View):
    """The base of every view with buttons: a failing button tells the user instead of only logging (which is
    discord.py's default, leaving a "thinking…" message forever)."""

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any]) -> None:
        await report(interaction, error)
