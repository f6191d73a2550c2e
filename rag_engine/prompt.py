"""Prompt building: retrieved passages + question → the exact prompt text, within a token budget.

The budget is the model's context window minus the room kept for the answer, counted with the generator's own
tokenizer. Passages are added nearest first and the farthest are dropped until the prompt fits. The chat
template itself belongs to the generator (`Generator.format_chat`); the wording comes from config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag_engine.config import PromptConfig
from rag_engine.errors import QuestionError
from rag_engine.generation import Generator
from rag_engine.records import Hit


@dataclass(frozen=True)
class BuiltPrompt:
    text: str
    tokens: int
    # Ids of the passages that made it into the prompt, in prompt order.
    passage_ids: tuple[int, ...]
    context: str


def check_question(question: str, config: PromptConfig) -> str:
    """The question stripped, or a `QuestionError` if it is empty or too long."""
    cleaned = question.strip()
    if not cleaned:
        raise QuestionError("the question is empty")
    if len(cleaned) > config.max_question_chars:
        raise QuestionError(
            f"the question is {len(cleaned):,} characters long; the limit is {config.max_question_chars:,}"
        )
    return cleaned


def format_context(hits: Sequence[Hit], config: PromptConfig) -> str:
    return "\n\n".join(
        config.passage_template.format(rank=hit.rank, source=hit.passage.path, text=hit.passage.text) for hit in hits
    )


def build_prompt(
    question: str, hits: Sequence[Hit], generator: Generator, config: PromptConfig, budget_tokens: int
) -> BuiltPrompt:
    """The RAG prompt with as many of `hits` (nearest first) as fit in `budget_tokens`."""
    for count in range(len(hits), -1, -1):
        used = hits[:count]
        context = format_context(used, config) if used else "(no passages)"
        user = config.template.format(context=context, question=question)
        text = generator.format_chat(config.system, user)
        tokens = generator.count_tokens(text)
        if tokens <= budget_tokens:
            return BuiltPrompt(text, tokens, tuple(h.passage.id for h in used), context if used else "")
    raise QuestionError(f"the question alone needs more than the {budget_tokens} prompt tokens available")


def build_norag_prompt(question: str, generator: Generator, config: PromptConfig, budget_tokens: int) -> BuiltPrompt:
    """The same model, the same settings, the question only."""
    text = generator.format_chat(config.norag_system, config.norag_template.format(question=question))
    tokens = generator.count_tokens(text)
    if tokens > budget_tokens:
        raise QuestionError(f"the question needs {tokens} tokens; only {budget_tokens} are available")
    return BuiltPrompt(text, tokens, (), "")
