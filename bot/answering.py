"""One answer, from question to final message: queue, stream by edits, final text with sources and buttons.

Shared by `/ask`, `/norag`, `/compare`, mentions and the "Answer without RAG" button, which differ only in
where the message lives (an interaction's original response, a reply, a followup): they pass an `edit`
coroutine. The engine runs in the generation queue's worker thread; tokens cross back into the loop through
`ThrottledEditor`. Formatting is `render.py`'s; the buttons are `views.py`'s.

Every queued job (answers, the pipeline view, `/eval answers`) goes through `queued`: it carries who asked
(the queue's per-user bound) and the deadline of their interaction token (the queue drops a job that could
not finish before it), and it records the job's message in the bot's store while it is in flight, so a
restart can finish the message. Also here: the sentences a user reads when the bot will not take a question
(another channel, cooldown, a full queue, a question that waited too long); the one check that decides it is
`bot.cogs.refusal`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import discord

from bot import render
from bot.jobs import JobExpiredError, PositionCallback, QueueFullError
from bot.store import InFlight
from bot.streaming import ThrottledEditor
from rag_engine.errors import RagError
from rag_engine.records import Answer

if TYPE_CHECKING:
    from bot.client import RagBot

log = logging.getLogger(__name__)

Edit = Callable[[str], Awaitable[None]]
T = TypeVar("T")

# Discord accepts edits and followups through an interaction's token for 15 minutes after the interaction.
INTERACTION_TOKEN_SECONDS = 15 * 60.0
# A job must be done this long before the token expires: the final edit, the followup parts, the buttons.
TOKEN_MARGIN_SECONDS = 60.0

NOT_HERE = "I don't answer questions in this channel."
NOT_IN_DMS = "I don't answer in direct messages; ask me in a server channel."


def cooldown_note(wait_seconds: float) -> str:
    return f"Slow down a little: you can ask again in {wait_seconds:.0f} s."


def busy_note(full: QueueFullError) -> str:
    """A question over the queue's bound, with the queue's estimate of when a place frees up."""
    seconds = math.ceil(full.wait_seconds)
    if full.per_user:
        why = f"you already have {full.limit} questions in the queue"
    else:
        why = f"{full.limit} questions are already in the queue"
    return f"⏳ I'm busy: {why}. Try again in {seconds} s."


def expired_note() -> str:
    return (
        "⌛ This question waited in the queue until Discord would no longer let me answer it "
        "(15 minutes). Please ask again."
    )


class AnswerDropped(RagError):
    """The job was not run and its message already says why; the error boundary sends nothing more."""


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
    """Run `work` in the generation queue for `asker`; its message is recorded as in flight meanwhile.

    Raises `QueueFullError` at once over a bound, `JobExpiredError` if the job was dropped at its deadline. A
    cancelled wait (the bot shutting down) leaves the record for the next start to finish the message.
    """
    bot.queue.check_room(asker.user_id)  # before the record: a refused job costs no write
    record = await asyncio.to_thread(bot.domains.add_in_flight, asker.where) if asker.where is not None else None
    try:
        ticket = bot.queue.submit(work, on_position, user_id=asker.user_id, deadline=asker.deadline)
        result = await ticket.result()
    except Exception:  # not CancelledError (a BaseException): a shutdown keeps the record
        await _forget(bot, record)
        raise
    await _forget(bot, record)
    return result


async def _forget(bot: RagBot, record: int | None) -> None:
    if record is not None:
        await asyncio.to_thread(bot.domains.remove_in_flight, [record])


def label(domain: str | None, use_rag: bool, mode: str | None = None) -> str:
    """The bold first line of an answer; a retrieval mode other than dense is named (it ranks differently)."""
    if not use_rag:
        return "No RAG: the model's weights alone"
    ranked = f" · {mode}" if mode and mode != "dense" else ""
    return f"RAG answer · {domain or 'all domains'}{ranked}"


def check(bot: RagBot, question: str, domain: str | None, k: int | None) -> str:
    """Refuse bad input before anything is queued (raises the engine's typed errors)."""
    return bot.engine.check(question, domain, k).question


async def stream_answer(
    bot: RagBot,
    question: str,
    domain: str | None,
    k: int | None,
    use_rag: bool,
    edit: Edit,
    mode: str | None = None,
    *,
    asker: Asker,
) -> Answer:
    """Queue the question, show the queue position, stream the answer into `edit`, return the trace.
    `mode` ("dense", "bm25", "hybrid") overrides `retrieval.mode` for this question.

    A question dropped at its deadline gets `expired_note` in its message, then `AnswerDropped` is raised."""
    title = label(domain, use_rag, mode or bot.config.retrieval.mode)
    # Queue-position edits and streamed edits go through one lock, and a position is never shown once the
    # answer has started, so a late "#2 in the queue" cannot overwrite streamed text.
    editing = asyncio.Lock()

    async def edit_in_turn(text: str) -> None:
        async with editing:
            await edit(text)

    editor = ThrottledEditor(
        edit_in_turn,
        bot.config.bot.edit_interval_seconds,
        asyncio.get_running_loop(),
        lambda text: render.answer_content(None, text, label=title),
    )

    async def show_position(position: int) -> None:
        async with editing:
            if position > 0 and not editor.text:
                await edit(f"**{title}**\n⏳ In the queue: #{position} (one answer is generated at a time).")

    def work() -> Answer:
        return bot.engine.answer(question, domain, k=k, use_rag=use_rag, on_token=editor.feed, mode=mode)

    try:
        answer = await queued(bot, work, asker, show_position)
    except asyncio.CancelledError:
        # Shutting down: no last edit (the connection is closing); the next start finishes the message.
        await editor.stop()
        raise
    except JobExpiredError as late:
        await editor.stop()
        note = expired_note()
        try:
            async with editing:
                await edit(f"**{title}**\n{note}")
        except discord.HTTPException:
            log.warning("could not say that a question expired in the queue", exc_info=True)
        raise AnswerDropped(note) from late
    except BaseException:
        await editor.finish()
        raise
    await editor.finish()
    return answer


def comparison_content(with_rag: str, without_rag: str, domain: str | None) -> str:
    """`/compare`: both answers in one message, each side cut to fit (the sources embed follows)."""
    side = (render.MESSAGE_LIMIT - 200) // 2

    def fit(text: str) -> str:
        return text if len(text) <= side else text[: side - 1].rstrip() + "…"

    return (
        f"**With RAG · {domain or 'all domains'}**\n{fit(with_rag)}\n\n"
        f"**Without RAG · the model's weights alone**\n{fit(without_rag)}"
    )


def final_content(answer: Answer) -> list[str]:
    """The final answer as message-sized parts (the first goes in the streamed message, the rest follow)."""
    return render.answer_messages(answer, label=label(answer.domain, answer.used_rag, answer.mode))
