"""`/eval [domain] [k] [what]`: how well retrieval finds the expected file for a domain's `questions.jsonl`,
or (`what: answers`) how many of its questions get a right answer, and why the others do not.

The channel's domain by default (or the given one; `all`, or a channel searching every domain, evaluates every
domain that has questions). The numbers are `rag_engine.evaluation.domains.evaluate_domain`'s: hit@k (the
expected file among the top k passages) and MRR within the top 10, plus every miss with what came back
instead. Only retrieval runs, in a worker thread (it embeds each question); no language model is involved, so
it does not wait in the generation queue. The reply is ephemeral, like `/knowledge status`.

`what: answers` runs `rag_engine.evaluation.answers.evaluate_answers` with the RAG column only (the no-RAG and
oracle columns triple the time: `ragscope eval answers` has them). It generates an answer per question, so it
waits its turn in the generation queue like any question, and takes a few seconds per question.

Both are expensive, so `/eval` passes the same admission check as `/ask` (`bot.admission`: channel, cooldown,
and for `answers` room in the queue). What the reply shows is `bot.render.eval`'s.

Not here: answer quality on SQuAD (`ragscope eval qa`, too slow for a chat command).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands
from discord.utils import escape_markdown

from bot.admission import admit
from bot.answering import Asker, queued
from bot.domains import asked_domain, domain_choices
from bot.render.eval import answers_embed, eval_embed
from rag_engine.config import MAX_K
from rag_engine.evaluation.answers import AnswerResult, evaluate_answers
from rag_engine.evaluation.domains import (
    QUESTIONS_FILE,
    evaluate_domain,
    evaluated_domains,
    load_questions,
    questions_path,
)

if TYPE_CHECKING:
    from bot.client import RagBot


class EvalCog(commands.Cog):
    def __init__(self, bot: RagBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="eval", description="Retrieval quality on a domain's questions: hit@k, MRR and the misses"
    )
    @app_commands.describe(
        domain="The domain to evaluate (default: the channel's; 'all' for every domain with questions)",
        k="How many passages count as retrieved (default from config)",
        what="retrieval (hit@k, MRR; seconds) or answers (right answers and why not; a few seconds per question)",
    )
    @app_commands.choices(
        what=[
            app_commands.Choice(name="retrieval", value="retrieval"),
            app_commands.Choice(name="answers", value="answers"),
        ]
    )
    @app_commands.autocomplete(domain=domain_choices)
    async def evaluate(
        self,
        interaction: discord.Interaction,
        domain: str | None = None,
        k: app_commands.Range[int, 1, MAX_K] | None = None,
        what: str = "retrieval",
    ) -> None:
        engine = self.bot.engine
        chosen = asked_domain(interaction, domain)
        if chosen is not None:
            chosen = engine.check_domain(chosen)
        # Say so at once when there is nothing to evaluate, rather than after a deferral.
        if chosen is not None and not questions_path(engine, chosen).is_file():
            await interaction.response.send_message(
                f"**{escape_markdown(chosen)}** has no `{QUESTIONS_FILE}` to evaluate against "
                '(one `{"question": …, "source": "file.md"}` per line).',
                ephemeral=True,
            )
            return
        names = [chosen] if chosen is not None else evaluated_domains(engine)
        if not names:
            await interaction.response.send_message(
                f"No domain has a `{QUESTIONS_FILE}` to evaluate against.", ephemeral=True
            )
            return
        # After the checks that cost nothing: a mistyped domain does not spend a cooldown token.
        if not await admit(interaction, queued=what == "answers"):
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        if what == "answers":

            def run() -> dict[str, list[AnswerResult]]:
                return {
                    name: evaluate_answers(engine, name, load_questions(questions_path(engine, name)), ("rag",))
                    for name in names
                }

            # Generation: one at a time, behind the questions already waiting.
            per_domain = await queued(self.bot, run, Asker.of_interaction(interaction))
            await interaction.followup.send(embed=answers_embed(per_domain), ephemeral=True)
            return
        # Embedding every question blocks: off the event loop, one domain after the other.
        reports = [await asyncio.to_thread(evaluate_domain, engine, name, k) for name in names]
        await interaction.followup.send(embed=eval_embed(reports), ephemeral=True)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(EvalCog(bot))  # type: ignore[arg-type]
