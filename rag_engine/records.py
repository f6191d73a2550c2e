"""The small frozen records that flow through the pipeline and out of the facade.

`Document` and `Passage` come out of loading and chunking, `Hit` out of retrieval, `Answer` out of
`Engine.answer`: the whole trace of one question that every surface renders. No behaviour lives here beyond
conversions to plain JSON-ready dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Block:
    """A paragraph-sized piece of a document's text with where it came from (1-based lines or page)."""

    text: str
    line_start: int
    line_end: int
    page: int | None = None


@dataclass(frozen=True)
class Document:
    """One loaded file: its path relative to the domain folder and its text as blocks."""

    path: str
    kind: str
    blocks: tuple[Block, ...]
    content_hash: str


@dataclass(frozen=True)
class Passage:
    """The unit that is embedded and retrieved; `text` is exactly what the embedder saw."""

    id: int
    path: str
    text: str
    line_start: int
    line_end: int
    page_start: int | None = None
    page_end: int | None = None

    @property
    def span(self) -> str:
        """Human-readable location: `p. 2-3` for PDFs, `L4-12` for text."""
        if self.page_start is not None:
            if self.page_start == self.page_end:
                return f"p. {self.page_start}"
            return f"p. {self.page_start}-{self.page_end}"
        return f"L{self.line_start}-{self.line_end}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "text": self.text,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "page_start": self.page_start,
            "page_end": self.page_end,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Passage:
        return cls(
            id=int(raw["id"]),
            path=str(raw["path"]),
            text=str(raw["text"]),
            line_start=int(raw["line_start"]),
            line_end=int(raw["line_end"]),
            page_start=raw.get("page_start"),
            page_end=raw.get("page_end"),
        )


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass(frozen=True)
class Hit:
    """A retrieved passage: its rank (1 = nearest), true Euclidean distance, and whether the prompt used it."""

    rank: int
    passage: Passage
    distance: float
    domain: str = ""
    in_prompt: bool = False


@dataclass(frozen=True)
class AnswerToken:
    """One generated token and whether its word also occurs in the retrieved context."""

    text: str
    in_context: bool


@dataclass(frozen=True)
class Answer:
    """The whole trace of one question, from query to generated text."""

    question: str
    domain: str | None
    used_rag: bool
    text: str
    hits: tuple[Hit, ...]
    prompt: str
    prompt_tokens: int
    tokens: tuple[AnswerToken, ...]
    timings: dict[str, float]
    models: dict[str, str]
    top_k: int
    max_distance: float
    # False when retrieval found nothing within max_distance: the text then says so and nothing was generated.
    covered: bool = True
    context_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sources(self) -> tuple[Hit, ...]:
        return self.hits

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `ragscope ask --json`."""
        return {
            "question": self.question,
            "domain": self.domain,
            "used_rag": self.used_rag,
            "covered": self.covered,
            "answer": self.text,
            "sources": [
                {
                    "rank": hit.rank,
                    "domain": hit.domain,
                    "path": hit.passage.path,
                    "span": hit.passage.span,
                    "distance": hit.distance,
                    "in_prompt": hit.in_prompt,
                    "text": hit.passage.text,
                }
                for hit in self.hits
            ],
            "top_k": self.top_k,
            "max_distance": self.max_distance,
            "prompt": self.prompt,
            "prompt_tokens": self.prompt_tokens,
            "context_tokens": self.context_tokens,
            "tokens": [{"text": t.text, "in_context": t.in_context} for t in self.tokens],
            "timings": self.timings,
            "models": self.models,
        }


@dataclass(frozen=True)
class DomainStats:
    """What one domain's index holds, for `ragscope index` / `domains` and later `/knowledge status`."""

    domain: str
    files: tuple[str, ...]
    passages: int
    skipped: tuple[SkippedFile, ...]
    built_at: float
    embedding_model: str
    # relative path -> [size, mtime_ns] of the files the index was built from (how staleness is detected).
    manifest: dict[str, list[int]] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "files": len(self.files),
            "indexed_files": list(self.files),
            "passages": self.passages,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "built_at": self.built_at,
            "embedding_model": self.embedding_model,
        }
