"""The one seam between answering a question and where the answer is generated: `JobQueue`.

`bot.answering` hands every answer (`/ask`, `/norag`, `/compare`, mentions, the "Answer without RAG" button)
to `RagBot.answers` as an `AnswerJob`: the checked `Query` (`Engine.check`'s fields), `use_rag`, who asked and
the deadline of their interaction token. The queue streams the answer's text into a `TokenStream` (the
message's `ThrottledEditor`), reports the job's place in line through `on_position`, and returns the whole
`Answer` trace. Two implementations:

- `LocalJobQueue` (`ragscope run`, role `all`, the default): this process's `GenerationQueue` runs
  `Engine.answer` in its thread, exactly as the bot always has;
- `RedisJobQueue` (`bot.redis_queue`, role `gateway`): the job goes onto a Redis stream and an answer worker
  (`bot.worker`, any machine) generates it.

Not here: the pipeline view and `/eval answers`, which stay on this process's `GenerationQueue`
(`bot.answering.queued`); the messages themselves (`bot.answering`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.jobs import GenerationQueue
from bot.queueing import PositionCallback
from rag_engine.engine import Engine
from rag_engine.records import Answer, Query


@dataclass(frozen=True)
class AnswerJob:
    """One question to answer: everything a process without the Discord connection needs (JSON-able)."""

    query: Query
    use_rag: bool
    # Who asked (the per-user bound) and by when (epoch seconds) the answer must be done to be shown at all.
    user_id: int
    deadline: float | None = None


class TokenStream(Protocol):
    """Where the text of an answer streams while it is generated (`bot.streaming.ThrottledEditor`)."""

    def feed(self, piece: str) -> None:
        """Any thread: one more piece of the answer."""

    def restart(self) -> None:
        """Any thread: the answer starts over; forget the pieces so far."""


class JobQueue(Protocol):
    """Where answers wait and are generated; the bounds, positions and deadlines of `bot.jobs` hold for all."""

    def check_room(self, user_id: int | None = None) -> None:
        """Raise `QueueFullError` if one more job of `user_id` would go over a bound."""

    async def start(self) -> None:
        """Before the first job (the bot's setup)."""

    async def stop(self) -> None:
        """At shutdown: waiting jobs are given up."""

    async def answer(self, job: AnswerJob, stream: TokenStream, on_position: PositionCallback | None) -> Answer:
        """Queue `job`, stream its text into `stream`, return its trace. Raises `QueueFullError` over a bound,
        `JobExpiredError` if it was dropped at its deadline, and whatever answering it raised."""


class LocalJobQueue:
    """The single process: `Engine.answer` in this process's `GenerationQueue` (which the bot starts/stops)."""

    def __init__(self, queue: GenerationQueue, engine: Engine) -> None:
        self.queue = queue
        self.engine = engine

    def check_room(self, user_id: int | None = None) -> None:
        self.queue.check_room(user_id)

    async def start(self) -> None:
        """Nothing to do: the bot starts its generation queue, which the pipeline view uses too."""

    async def stop(self) -> None:
        """Nothing to do: the bot stops its generation queue."""

    async def answer(self, job: AnswerJob, stream: TokenStream, on_position: PositionCallback | None) -> Answer:
        engine, query = self.engine, job.query

        def work() -> Answer:
            return engine.answer(query, use_rag=job.use_rag, on_token=stream.feed)

        ticket = self.queue.submit(work, on_position, user_id=job.user_id, deadline=job.deadline)
        return await ticket.result()
