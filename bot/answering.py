"""One answer, from question to final message: queue, stream by edits, final text with sources and buttons.

Shared by `/ask`, `/norag`, `/compare`, mentions and the "Answer without RAG" button, which differ only in
where the message lives (an interaction's original response, a reply, a followup): they pass an `edit`
coroutine. The engine runs in the generation queue's worker thread; tokens cross back into the loop through
`ThrottledEditor`. Formatting is `render.py`'s; the buttons are `views.py`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bot import render
from bot.streaming import ThrottledEditor
from rag_engine.prompt import check_question
from rag_engine.records import Answer

if TYPE_CHECKING:
    from bot.client import RagBot

Edit = Callable[[str], Awaitable[None]]


def label(domain: str | None, use_rag: bool, mode: str | None = None) -> str:
    """The bold first line of an answer; a retrieval mode other than dense is named (it ranks differently)."""
    if not use_rag:
        return "No RAG: the model's weights alone"
    ranked = f" · {mode}" if mode and mode != "dense" else ""
    return f"RAG answer · {domain or 'all domains'}{ranked}"


def cooldown_note(wait_seconds: float) -> str:
    return f"Slow down a little: you can ask again in {wait_seconds:.0f} s."


def check(bot: RagBot, question: str, domain: str | None, k: int | None) -> str:
    """Refuse bad input before anything is queued (raises the engine's typed errors)."""
    question = check_question(question, bot.config.prompt)
    if domain is not None:
        bot.engine.knowledge.check_domain(domain)
    if k is not None and not 1 <= k <= 20:
        from rag_engine.errors import QuestionError

        raise QuestionError("k must be between 1 and 20")
    return question


async def stream_answer(
    bot: RagBot,
    question: str,
    domain: str | None,
    k: int | None,
    use_rag: bool,
    edit: Edit,
    mode: str | None = None,
) -> Answer:
    """Queue the question, show the queue position, stream the answer into `edit`, return the trace.
    `mode` ("dense", "bm25", "hybrid") overrides `retrieval.mode` for this question."""
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

    ticket = bot.queue.submit(work, on_position=show_position)
    try:
        answer = await ticket.result()
    finally:
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
