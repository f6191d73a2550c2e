"""Small deterministic stand-ins for the two models, for fast tests of the engine, the CLI and the bot.

`HashingEmbedder` gives every word a fixed random direction (seeded by the word's hash) and returns the
normalised sum, so texts sharing words are near; it records each batch it embedded (`calls`,
`texts_embedded`). `EchoGenerator` counts whitespace-separated tokens and answers with the first words of the
prompt's context ("I do not know." when it has none), recording every prompt (`prompts`); `ScriptedGenerator`
always gives the same answer; `UniformAttention` stands in for the pipeline view's attention model (uniform
attention over whitespace tokens, a real `AttentionMap`). The bot's tests build on these (tests/bot/conftest.py:
a generator held until released); tests with the real models are marked `real_models` and load them themselves.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from rag_engine.explain.attention import AttentionMap


class HashingEmbedder:
    def __init__(self, dimension: int = 64, name: str = "all-MiniLM-L6-v2") -> None:
        self.name = name
        self.dimension = dimension
        self.calls: list[list[str]] = []

    def _word_vector(self, word: str) -> npt.NDArray[np.float32]:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big")
        return np.random.default_rng(seed).standard_normal(self.dimension).astype(np.float32)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls.append(list(texts))
        rows = []
        for text in texts:
            vector = np.zeros(self.dimension, np.float32)
            for word in re.findall(r"\w+", text.lower()):
                vector += self._word_vector(word)
            norm = np.linalg.norm(vector)
            rows.append(vector / norm if norm else vector)
        return np.vstack(rows).astype(np.float32) if rows else np.zeros((0, self.dimension), np.float32)

    @property
    def texts_embedded(self) -> int:
        return sum(len(call) for call in self.calls)


class EchoGenerator:
    name = "echo"

    def __init__(self, context_tokens: int = 2048, answer_words: int = 6) -> None:
        self.context_tokens = context_tokens
        self.answer_words = answer_words
        self.prompts: list[str] = []

    def format_chat(self, system: str, user: str) -> str:
        return f"<system> {system} <user> {user} <assistant>"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, prompt: str, max_tokens: int, context: str = "") -> Iterator[str]:
        self.prompts.append(prompt)
        body = prompt.split("Context:", 1)[-1].split("Question:", 1)[0]
        words = [w for w in body.split() if not w.startswith("[")][: min(self.answer_words, max_tokens)]
        for i, word in enumerate(words or ["I", "do", "not", "know."]):
            yield word if i == 0 else " " + word


class ScriptedGenerator(EchoGenerator):
    """Answers every prompt with the same text (e.g. a wrong number, to test the support check)."""

    name = "scripted"

    def __init__(self, answer: str, context_tokens: int = 2048) -> None:
        super().__init__(context_tokens)
        self.answer = answer

    def stream(self, prompt: str, max_tokens: int, context: str = "") -> Iterator[str]:
        self.prompts.append(prompt)
        for i, word in enumerate(self.answer.split(" ")):
            yield word if i == 0 else " " + word


class UniformAttention:
    """Stands in for `AttentionModel`: a real `AttentionMap` of whitespace tokens and uniform attention; it
    remembers what it was given."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def attend(
        self, prompt: str, answer: str, contexts: Sequence[str] = (), question: str = "", last_layers: int = 4
    ) -> AttentionMap:
        self.calls.append({"prompt": prompt, "answer": answer, "contexts": list(contexts), "question": question})
        prompt_tokens, answer_tokens = tuple(prompt.split()), tuple(answer.split())
        weights = np.full((len(answer_tokens), len(prompt_tokens)), 1 / len(prompt_tokens), np.float32)
        spans = (("[1]", 3, 10), ("question", 12, 15))
        return AttentionMap(prompt_tokens, answer_tokens, weights, (26, 27, 28, 29), 9, spans)
