"""Prompt building: retrieved passages + question → the exact prompt text, within a token budget.

The context is a list of blocks: whole passages (nearest first) or the excerpts that evidence selection chose
(best first). The budget is the model's context window minus the room kept for the answer, counted with the
generator's own tokenizer; the last blocks are dropped until the prompt fits (and, for excerpts, until the
context fits `evidence.max_context_tokens`). The chat template itself belongs to the generator
(`Generator.format_chat`); the wording comes from config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag_engine.config import Config, PromptConfig
from rag_engine.errors import QuestionError
from rag_engine.generate.evidence import Excerpt
from rag_engine.generate.generation import Generator
from rag_engine.generate.sentences import split_sentences
from rag_engine.records import Hit, Sentence


@dataclass(frozen=True)
class ContextBlock:
    """One numbered piece of the context: a whole passage, or an excerpt of one."""

    passage_id: int
    source: str
    text: str
    sentences: tuple[Sentence, ...] = ()


@dataclass(frozen=True)
class BuiltPrompt:
    text: str
    tokens: int
    # Ids of the passages that made it into the prompt, in prompt order (once each).
    passage_ids: tuple[int, ...]
    context: str
    # The blocks that made it, in prompt order: what the answer is checked against.
    blocks: tuple[ContextBlock, ...] = ()


def passage_blocks(hits: Sequence[Hit]) -> list[ContextBlock]:
    return [
        ContextBlock(
            hit.passage.id, hit.passage.path, hit.passage.text, tuple(split_sentences(hit.passage, hit.domain))
        )
        for hit in hits
    ]


def excerpt_blocks(excerpts: Sequence[Excerpt]) -> list[ContextBlock]:
    return [
        ContextBlock(excerpt.hit.passage.id, excerpt.sentences[0].where, excerpt.text, excerpt.sentences)
        for excerpt in excerpts
    ]


def format_context(blocks: Sequence[ContextBlock], config: PromptConfig) -> str:
    return "\n\n".join(
        config.passage_template.format(rank=rank, source=block.source, text=block.text)
        for rank, block in enumerate(blocks, start=1)
    )


def build_prompt(
    question: str,
    hits: Sequence[Hit],
    generator: Generator,
    config: PromptConfig,
    budget_tokens: int,
    blocks: Sequence[ContextBlock] | None = None,
    context_tokens: int | None = None,
) -> BuiltPrompt:
    """The RAG prompt with as many context blocks as fit in `budget_tokens` (and the context alone in
    `context_tokens`, when given). The blocks are `hits`' passages unless `blocks` are given."""
    candidates = list(blocks) if blocks is not None else passage_blocks(hits)
    for count in range(len(candidates), -1, -1):
        used = candidates[:count]
        context = format_context(used, config) if used else "(no passages)"
        if used and context_tokens is not None and count > 1 and generator.count_tokens(context) > context_tokens:
            continue
        user = config.template.format(context=context, question=question)
        text = generator.format_chat(config.system, user)
        tokens = generator.count_tokens(text)
        if tokens <= budget_tokens:
            ids = tuple(dict.fromkeys(block.passage_id for block in used))
            return BuiltPrompt(text, tokens, ids, context if used else "", tuple(used))
    raise QuestionError(f"the question alone needs more than the {budget_tokens} prompt tokens available")


def build_rag_prompt(
    question: str,
    evidence: Sequence[Hit],
    generator: Generator,
    config: Config,
    budget_tokens: int,
    excerpts: Sequence[Excerpt] | None = None,
) -> BuiltPrompt:
    """The answer's RAG prompt: `evidence`'s whole passages, or the `excerpts` evidence selection chose (best
    first, the context within `evidence.max_context_tokens`; the best last when `evidence.order` says so)."""
    if excerpts is None:
        return build_prompt(question, evidence, generator, config.prompt, budget_tokens)
    blocks = excerpt_blocks(excerpts)
    limit = config.evidence.max_context_tokens
    built = build_prompt(question, evidence, generator, config.prompt, budget_tokens, blocks, context_tokens=limit)
    if config.evidence.order == "best_last" and len(built.blocks) > 1:
        # The same blocks (they fit), the best one last, next to the question.
        built = build_prompt(question, evidence, generator, config.prompt, budget_tokens, list(reversed(built.blocks)))
    return built


def build_norag_prompt(question: str, generator: Generator, config: PromptConfig, budget_tokens: int) -> BuiltPrompt:
    """The same model, the same settings, the question only."""
    text = generator.format_chat(config.norag_system, config.norag_template.format(question=question))
    tokens = generator.count_tokens(text)
    if tokens > budget_tokens:
        raise QuestionError(f"the question needs {tokens} tokens; only {budget_tokens} are available")
    return BuiltPrompt(text, tokens, (), "")
