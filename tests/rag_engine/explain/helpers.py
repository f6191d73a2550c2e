"""What the pipeline view's tests share: small knowledge folders of made-up topics over fake models, an
attention model that always fails, and checks on PNG files, label boxes and ANSI text."""

from __future__ import annotations

import dataclasses
import itertools
import re
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.errors import RagError
from rag_engine.explain.attention import AttentionMap
from rag_engine.explain.view import AttentionSource
from rag_engine.records import AnswerToken
from tests.conftest import write
from tests.fakes import EchoGenerator, HashingEmbedder

QUESTION = "Who described the zorblat in 1887?"
TOPICS = [
    "apollo-11-moon-landing", "eiffel-tower", "gutenberg-printing-press", "magellan-elcano-circumnavigation",
    "panama-canal", "rosetta-stone", "suez-canal", "transatlantic-telegraph-cable", "transcontinental-railroad",
    "wright-brothers-first-flight",
]  # fmt: skip
WORDS = ["canal", "tower", "press", "ship", "cable", "railroad", "flight", "stone", "moon", "engine", "river"]


class BrokenAttention:
    """An attention model that cannot read its GGUF (what transformers says of an unknown architecture)."""

    def attend(
        self, prompt: str, answer: str, contexts: Sequence[str] = (), question: str = "", last_layers: int = 4
    ) -> AttentionMap:
        raise RagError("transformers cannot read this GGUF")


def fake_engine_for(config: Config, attention: Callable[[], AttentionSource] = BrokenAttention) -> Engine:
    """An engine over the fake models; its attention model fails unless another is given (never the real one)."""
    return Engine(config, embedder=HashingEmbedder, generator=EchoGenerator, attention=attention)


def topic_domain(root: Path, files: int, passages_per_file: int = 1, domain: str = "topics") -> Path:
    """`files` documents of one short paragraph each (one passage), or several well-separated paragraphs."""
    rng = np.random.default_rng(files * 100 + passages_per_file)
    for i in range(files):
        name = f"{TOPICS[i % len(TOPICS)]}-{i:02d}.md" if files > len(TOPICS) else f"{TOPICS[i]}.md"
        paragraphs = []
        for j in range(passages_per_file):
            chosen = " ".join(rng.choice(WORDS, 6))
            paragraphs.append(f"Paragraph {j} of {TOPICS[i % len(TOPICS)]} about the {chosen} in {1800 + i}. " * 6)
        write(root / domain / name, "\n\n".join(paragraphs) + "\n")
    return root


def topic_engine(tmp_path: Path, files: int, passages_per_file: int = 1) -> Engine:
    root = topic_domain(tmp_path / "topics-knowledge", files, passages_per_file)
    base = Config()
    config = dataclasses.replace(
        base.with_paths(knowledge_dir=root, data_dir=tmp_path / "topics-data"),
        retrieval=dataclasses.replace(base.retrieval, max_distance=1.6, mode="dense"),
    )
    return fake_engine_for(config)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def overlapping(boxes: Sequence[Any]) -> list[tuple[int, int]]:
    return [
        (i, j)
        for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2)
        if a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1
    ]


def highlighted_words(tokens: Sequence[AnswerToken]) -> set[str]:
    """The whole words (lower-cased) that the in-context tokens belong to: a token may be part of a word."""
    text = "".join(t.text for t in tokens)
    marked = []
    position = 0
    for token in tokens:
        if token.in_context:
            marked.append((position, position + len(token.text)))
        position += len(token.text)
    found = set()
    for match in re.finditer(r"[^\W_]+(?:[.,'’][^\W_]+)*", text):
        if any(start < match.end() and match.start() < end for start, end in marked):
            found.add(match.group(0).lower())
    return found


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
