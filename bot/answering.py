"""One answer, from a checked question to the final message: admit, acknowledge, queue, stream, finish.

`deliver_answer` is the one flow of `/ask`, `/norag`, `/compare`, mentions and the "Answer without RAG"
button: admission (`bot.admission`) → acknowledge (defer, or post the reply) → queue and stream the answer by
editing one message → the final content, the sources embed and the buttons → the parts that did not fit, as
follow-ups. The callers differ only in where the message lives, an `AnswerMessage`: an interaction's original
response (`InteractionAnswer`) or the bot's reply to a mention (`ReplyAnswer`). The question was checked
once before (`Engine.check` → `Query`); the engine answers that `Query`.

An answer is an `AnswerJob` for the bot's `JobQueue` (`RagBot.answers`, `bot.job_queue`): in one process the
engine runs in the generation queue's worker thread, past one machine an answer worker generates it
(`bot.redis_queue`); either way its tokens reach `ThrottledEditor`. The pipeline view and `/eval answers` go
through `queued`, this process's generation queue. Every job carries who asked (the queue's per-user bound)
and the deadline of their interaction token (the queue drops a job that could not finish before it), and its
message is recorded in the bot's store while it is in flight (`in_flight`), so a restart can finish it.
Formatting is `bot.render`'s; the buttons are `bot.views`'s (passed in as `buttons`, so this module does not
depend on them).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import discord

from bot.admission import refusal
from bot.errors import AnswerDropped, JobExpiredError
from bot.job_queue import AnswerJob
from bot.queueing import PositionCallback
from bot.render.answer import (
    answer_body,
    answer_content,
    answer_label,
    answer_messages,
    comparison_content,
    queue_status,
    status_content,
)
from bot.render.pipeline import pipeline_message
from bot.render.sources import sources_embed
from bot.store import InFlight
from bot.streaming import ThrottledEditor
from rag_engine.records import Answer, Query

if TYPE_CHECKING:
    from bot.client import RagBot

log = logging.getLogger(__name__)

Edit = Callable[[str], Awaitable[None]]
Buttons = Callable[[Answer], discord.ui.View]
T = TypeVar("T")

# Discord accepts edits and followups through an interaction's token for 15 minutes after the interaction.
INTERACTION_TOKEN_SECONDS = 15 * 60.0
# A job must be done this long before the token expires: the final edit, the followup parts, the buttons.
TOKEN_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class Asker:
    """Who waits for a job and where: the user (per-user bound), the deadline (epoch seconds; None = none)
    and where the message is, for a restart to finish it (None = nothing to record)."""

    user_id: int
    deadline: float | None = None
    where: InFlight | None = None

    @classmethod
    def of_interaction(cls, interaction: discord.Interaction) -> Asker:
        """The interaction's user; its message is the original response, reachable while the token lives."""
        expires = interaction.created_at.timestamp() + INTERACTION_TOKEN_SECONDS
        where = InFlight(
            channel_id=interaction.channel_id,
            application_id=interaction.application_id,
            interaction_token=interaction.token,
            token_expires_at=expires,
        )
        return cls(interaction.user.id, expires - TOKEN_MARGIN_SECONDS, where)

    @classmethod
    def of_reply(cls, user_id: int, reply: discord.Message) -> Asker:
        """A mention answered in the bot's own reply: no token, so no deadline."""
        return cls(user_id, None, InFlight(channel_id=reply.channel.id, message_id=reply.id))


async def queued(bot: RagBot, work: Callable[[], T], asker: Asker, on_position: PositionCallback | None = None) -> T:
    """Run `work` in this process's generation queue for `asker`; its message is recorded as in flight meanwhile.

    Raises `QueueFullError` at once over a bound, `JobExpiredError` if the job was dropped at its deadline. A
    cancelled wait (the bot shutting down) leaves the record for the next start to finish the message.
    """
    bot.queue.check_room(asker.user_id)  # before the record: a refused job costs no write
    async with in_flight(bot, asker):
        ticket = bot.queue.submit(work, on_position, user_id=asker.user_id, deadline=asker.deadline)
        return await ticket.result()


@asynccontextmanager
async def in_flight(bot: RagBot, asker: Asker) -> AsyncIterator[None]:
    """`asker`'s message is recorded in the bot's store while the block runs, so a restart can finish it.

    An exception forgets the record; a cancellation (a BaseException: the bot shutting down) keeps it."""
    record = await asyncio.to_thread(bot.domains.add_in_flight, asker.where) if asker.where is not None else None
    try:
        yield
    except Exception:
        await _forget(bot, record)
        raise
    await _forget(bot, record)


async def _forget(bot: RagBot, record: int | None) -> None:
    if record is not None:
        await asyncio.to_thread(bot.domains.remove_in_flight, [record])


# -- where an answer is shown -------------------------------------------------------------------------------
class AnswerMessage(ABC):
    """The message one answer streams into, and who asked for it; subclasses say how it is sent."""

    def __init__(self, user_id: int, channel: object, guild: discord.Guild | None) -> None:
        self.user_id = user_id
        self.channel = channel
        self.guild = guild

    async def start(self, bot: RagBot, placeholder: str) -> bool:
        """The admission check, then the acknowledgement (`placeholder`: the first text, where one is shown).
        False if refused: the user has been told why."""
        reason = refusal(bot, self.user_id, self.channel, self.guild)
        if reason is not None:
            await self.refuse(reason)
            return False
        await self.open(placeholder)
        return True

    @property
    @abstractmethod
    def asker(self) -> Asker:
        """Who waits for the answer and where its message is (for the queue and a restart)."""

    @abstractmethod
    async def refuse(self, reason: str) -> None:
        """Tell the user why the question was not admitted."""

    @abstractmethod
    async def open(self, placeholder: str) -> None:
        """Acknowledge the question at once (Discord's 3-second rule for interactions)."""

    @abstractmethod
    async def edit(self, text: str) -> None:
        """Replace the message's text (queue position, streamed text)."""

    @abstractmethod
    async def show(self, content: str, embeds: list[discord.Embed], view: discord.ui.View | None) -> None:
        """The final message: content, embeds and buttons."""

    @abstractmethod
    async def follow(self, text: str) -> None:
        """One more message after it (the parts of a long answer)."""


class InteractionAnswer(AnswerMessage):
    """An interaction's original response: deferred ("thinking…"), then edited; refusals are ephemeral."""

    def __init__(self, interaction: discord.Interaction) -> None:
        super().__init__(interaction.user.id, interaction.channel, interaction.guild)
        self.interaction = interaction
        self._asker = Asker.of_interaction(interaction)

    @property
    def asker(self) -> Asker:
        return self._asker

    async def refuse(self, reason: str) -> None:
        await self.interaction.response.send_message(reason, ephemeral=True)

    async def open(self, placeholder: str) -> None:
        await self.interaction.response.defer(thinking=True)

    async def edit(self, text: str) -> None:
        await self.interaction.edit_original_response(content=text)

    async def show(self, content: str, embeds: list[discord.Embed], view: discord.ui.View | None) -> None:
        await self.interaction.edit_original_response(content=content, embeds=embeds, view=view)

    async def follow(self, text: str) -> None:
        await self.interaction.followup.send(text)


class ReplyAnswer(AnswerMessage):
    """The bot's reply to a mention: posted with the placeholder, then edited; refusals are replies."""

    def __init__(self, message: discord.Message) -> None:
        super().__init__(message.author.id, message.channel, message.guild)
        self.message = message
        self.reply: discord.Message | None = None  # set once posted: where errors are shown too

    @property
    def asker(self) -> Asker:
        assert self.reply is not None, "the reply is posted first (open)"
        return Asker.of_reply(self.user_id, self.reply)

    async def refuse(self, reason: str) -> None:
        await self.message.reply(reason)

    async def open(self, placeholder: str) -> None:
        self.reply = await self.message.reply(placeholder)

    async def edit(self, text: str) -> None:
        assert self.reply is not None
        await self.reply.edit(content=text)

    async def show(self, content: str, embeds: list[discord.Embed], view: discord.ui.View | None) -> None:
        assert self.reply is not None
        await self.reply.edit(content=content, embeds=embeds, view=view)

    async def follow(self, text: str) -> None:
        await self.message.channel.send(text)


# -- the flow -----------------------------------------------------------------------------------------------
async def deliver_answer(
    bot: RagBot,
    where: AnswerMessage,
    query: Query,
    *,
    use_rag: bool = True,
    compare: bool = False,
    buttons: Buttons | None = None,
) -> Answer | None:
    """Admit, acknowledge, stream the answer to `query` into `where`, then show the final answer with its
    sources embed and `buttons(answer)`, and send what did not fit as follow-ups. `compare` streams the
    answer with and without RAG side by side into one message (no buttons). Returns the (RAG) answer, or
    None if the user was refused."""
    title = answer_label(query.domain, use_rag, query.mode)
    if not await where.start(bot, answer_content(None, "", label=title)):
        return None
    if compare:
        content, answer = await _stream_comparison(bot, where, query)
        parts, view = [content], None
    else:
        answer = await stream_answer(bot, query, use_rag, where.edit, asker=where.asker)
        parts, view = answer_messages(answer), buttons(answer) if buttons is not None else None
    embeds = [sources_embed(answer, 0, bot.settings.sources_per_page)] if answer.hits else []
    await where.show(parts[0], embeds, view)
    for part in parts[1:]:
        await where.follow(part)
    return answer


async def _stream_comparison(bot: RagBot, where: AnswerMessage, query: Query) -> tuple[str, Answer]:
    """Both answers streamed into one message, one after the other; (the final content, the RAG answer)."""
    shown = {True: "…", False: "…"}

    async def edit_side(use_rag: bool, text: str) -> None:
        shown[use_rag] = text
        await where.edit(comparison_content(shown[True], shown[False], query.domain))

    answers: dict[bool, Answer] = {}
    for use_rag in (True, False):
        answers[use_rag] = await stream_answer(bot, query, use_rag, partial(edit_side, use_rag), asker=where.asker)
        shown[use_rag] = answer_body(answers[use_rag])
    return comparison_content(shown[True], shown[False], query.domain), answers[True]


async def stream_answer(bot: RagBot, query: Query, use_rag: bool, edit: Edit, *, asker: Asker) -> Answer:
    """Queue the question, show the queue position, stream the answer into `edit`, return the trace.

    A question dropped at its deadline gets the reason in its message, then `AnswerDropped` is raised."""
    title = answer_label(query.domain, use_rag, query.mode)
    # Queue-position edits and streamed edits go through one lock, and a position is never shown once the
    # answer has started, so a late "#2 in the queue" cannot overwrite streamed text.
    editing = asyncio.Lock()

    async def edit_in_turn(text: str) -> None:
        async with editing:
            await edit(text)

    editor = ThrottledEditor(
        edit_in_turn,
        bot.settings.edit_interval_seconds,
        asyncio.get_running_loop(),
        lambda text: answer_content(None, text, label=title),
    )

    async def show_position(position: int) -> None:
        async with editing:
            if position > 0 and not editor.text:
                await edit(status_content(title, queue_status(position)))

    job = AnswerJob(query, use_rag, asker.user_id, asker.deadline)
    try:
        bot.answers.check_room(asker.user_id)  # before the record: a refused job costs no write
        async with in_flight(bot, asker):
            answer = await bot.answers.answer(job, editor, show_position)
    except asyncio.CancelledError:
        # Shutting down: no last edit (the connection is closing); the next start finishes the message.
        await editor.stop()
        raise
    except JobExpiredError as late:
        await editor.stop()
        try:
            async with editing:
                await edit(status_content(title, str(late)))
        except discord.HTTPException:
            log.warning("could not say that a question expired in the queue", exc_info=True)
        raise AnswerDropped(str(late)) from late
    except BaseException:
        await editor.finish()
        raise
    await editor.finish()
    return answer


async def pipeline_for(
    bot: RagBot, answer: Answer, asker: Asker
) -> tuple[str, list[discord.Embed], list[discord.File]]:
    """The pipeline view of `answer` laid out for Discord: `/pipeline` and the "Show pipeline" button. The engine
    builds it (`Engine.explain`) and `pipeline_message` draws its pictures, both in the generation queue for
    `asker`: the attention pass runs the model, so it waits its turn like an answer."""
    engine = bot.engine
    return await queued(bot, lambda: pipeline_message(engine.explain(answer)), asker)
