"""The small frozen records that flow through the pipeline and out of the facade.

`Document` and `Passage` come out of loading and chunking, `Hit` out of retrieval, `Answer` out of
`Engine.answer`: the whole trace of one question that every surface renders. No behaviour lives here beyond
conversions to plain JSON-ready dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rag_engine.safe_names import utf8_name


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
    """A file of a domain that is not in its index, and why. `failed` = it should have been readable (corrupt,
    vanished, no access); otherwise it was skipped on purpose (unsupported, binary, empty, too large)."""

    path: str
    reason: str
    failed: bool = False

    def to_dict(self) -> dict[str, Any]:
        # A name that is not UTF-8 (why it was skipped) is written with its bad bytes escaped: JSON stays UTF-8.
        return {"path": utf8_name(self.path), "reason": utf8_name(self.reason)}


@dataclass(frozen=True)
class Hit:
    """A retrieved passage: its rank (1 = best), true Euclidean distance to the question (whatever the retrieval
    mode), and whether the prompt used it."""

    rank: int
    passage: Passage
    distance: float
    domain: str = ""
    in_prompt: bool = False
    # What the retrieval mode ranked by, higher is better: the cosine similarity (dense), the BM25 score
    # (bm25), or the fused score (hybrid).
    score: float = 0.0
    # The passage's rank among the dense (nearest) and the lexical (BM25) candidates; None when it was not
    # among them, or that retriever was not asked.
    dense_rank: int | None = None
    lexical_rank: int | None = None

    def retriever_ranks(self) -> str:
        """Where a fused (hybrid) hit stood in each retriever's candidates: "dense #2, bm25 –" (– = not there)."""
        dense, words = (f"#{rank}" if rank is not None else "–" for rank in (self.dense_rank, self.lexical_rank))
        return f"dense {dense}, bm25 {words}"


@dataclass(frozen=True)
class AnswerToken:
    """One generated token and whether its word also occurs in the retrieved context."""

    text: str
    in_context: bool


@dataclass(frozen=True)
class Sentence:
    """One sentence of a retrieved passage and where it stands: the unit of evidence selection and of the
    evidence line shown under an answer. `line` is the 1-based file line (or the PDF page's first line) where
    the sentence starts."""

    text: str
    passage_id: int
    path: str
    line: int
    domain: str = ""
    page: int | None = None

    @property
    def where(self) -> str:
        """`file.md:12`, or `file.pdf p. 3` for a PDF page."""
        return f"{self.path} p. {self.page}" if self.page is not None else f"{self.path}:{self.line}"

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "path": self.path, "line": self.line, "page": self.page, "domain": self.domain}


@dataclass(frozen=True)
class Claim:
    """A checkable span of the answer (a number, a date, a proper name) and whether the prompt's passages hold
    it. `passage_id`/`path` name the first passage of the prompt that holds it (None when unsupported)."""

    span: str
    # "number" or "name" (of the answer), or "topic": a name the question asks about that the passage behind
    # the answer never mentions, or "asked": the kind of answer the question asks for ("a duration") when the
    # answer's numbers are all of another kind.
    kind: str
    supported: bool
    passage_id: int | None = None
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"span": self.span, "kind": self.kind, "supported": self.supported, "passage": self.path}


@dataclass(frozen=True)
class Query:
    """A question that passed `Engine.check`: stripped and within the length limit, its domain known (None: all
    domains), `k` within 1..MAX_K and a known retrieval mode. What `Engine.answer` takes."""

    question: str
    domain: str | None
    # The domains that will be searched: the one asked for, or every domain at the time of the check.
    domains: tuple[str, ...]
    k: int
    mode: str
    # Retrieval rounds (`HOPS`): 2 searches again with what the model says is still missing.
    hops: int = 1


# Where a retrieval round's query came from (`Round.origin`): the user's question, the model's follow-up query,
# or the fallback when the model's follow-up was empty or added nothing (the question + the first round's
# names and numbers).
ROUND_ORIGINS = ("question", "model", "fallback")


@dataclass(frozen=True)
class Round:
    """One retrieval round of a multi-hop answer: the text searched with, where it came from, and its hits
    (distances to that text, best first). `said` is what the model wrote for a follow-up round ("" otherwise),
    kept when the fallback replaced it."""

    query: str
    origin: str
    hits: tuple[Hit, ...]
    said: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "origin": self.origin,
            "said": self.said,
            "hits": [
                {
                    "rank": hit.rank,
                    "domain": hit.domain,
                    "path": hit.passage.path,
                    "span": hit.passage.span,
                    "distance": hit.distance,
                    "in_prompt": hit.in_prompt,
                }
                for hit in self.hits
            ],
        }


# How an answer stands against the passages in its prompt (`Answer.grounding`):
# "grounded"    every checkable claim is in the passages and an evidence sentence supports the answer;
# "partly"      some claims are in the passages, some are not;
# "unsupported" nothing in the prompt supports the answer's key claims;
# "refused"     the model (or the threshold) said the documents do not answer it;
# ""            not checked (no RAG).
GROUNDING_VERDICTS = ("grounded", "partly", "unsupported", "refused", "")


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
    # False when retrieval found nothing within max_distance: nothing was generated and `text` is empty; the facts
    # are the hits, `closest_distance`, `max_distance` and `mode`, and each surface words them.
    covered: bool = True
    context_tokens: int = 0
    # The question's embedding (empty without retrieval) and the domains searched: what the pipeline view
    # draws, taken from this very run rather than re-computed.
    query_vector: tuple[float, ...] = field(default=(), repr=False)
    searched: tuple[str, ...] = ()
    # The retrieval mode that ranked the hits: "dense", "bm25" or "hybrid".
    mode: str = "dense"
    # The text of each numbered block of the prompt's context ([1], [2], …), in prompt order: whole passages,
    # or the excerpts evidence selection chose.
    contexts: tuple[str, ...] = ()
    # The sentences of the prompt's context, in prompt order (best first with evidence selection).
    context_sentences: tuple[Sentence, ...] = ()
    # The support check: every number and name of the answer looked up in the prompt's passages.
    support: tuple[Claim, ...] = ()
    # The one sentence of the prompt that best supports the answer (None when none does).
    evidence: Sentence | None = None
    grounding: str = ""
    # A multi-hop answer's retrieval rounds, in order (`hits` is then the rounds' hits merged); empty for one
    # round, where `hits` says it all.
    rounds: tuple[Round, ...] = ()

    @property
    def hops(self) -> int:
        return max(1, len(self.rounds))

    @property
    def closest_distance(self) -> float | None:
        """The smallest distance among the hits (in bm25 and hybrid modes rank 1 need not be the closest)."""
        return min((hit.distance for hit in self.hits), default=None)

    @property
    def unsupported(self) -> tuple[Claim, ...]:
        return tuple(claim for claim in self.support if not claim.supported)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `ragscope ask --json`."""
        return {
            "question": self.question,
            "domain": self.domain,
            "used_rag": self.used_rag,
            "covered": self.covered,
            "closest_distance": self.closest_distance,
            "answer": self.text,
            "sources": [
                {
                    "rank": hit.rank,
                    "domain": hit.domain,
                    "path": hit.passage.path,
                    "span": hit.passage.span,
                    "distance": hit.distance,
                    "score": hit.score,
                    "dense_rank": hit.dense_rank,
                    "lexical_rank": hit.lexical_rank,
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
            "searched": list(self.searched),
            "mode": self.mode,
            "contexts": list(self.contexts),
            "context_sentences": [sentence.to_dict() for sentence in self.context_sentences],
            "support": [claim.to_dict() for claim in self.support],
            "evidence": self.evidence.to_dict() if self.evidence else None,
            "grounding": self.grounding,
            "hops": self.hops,
            "rounds": [round_.to_dict() for round_ in self.rounds],
        }


@dataclass(frozen=True)
class DomainStats:
    """What one domain's index holds, for `ragscope index` / `domains` and the bot's `/knowledge status`."""

    domain: str
    files: tuple[str, ...]
    passages: int
    skipped: tuple[SkippedFile, ...]
    # When the domain was last indexed from scratch, and when the last change was applied (Unix seconds).
    built_at: float
    embedding_model: str
    updated_at: float = 0.0
    # Counts the updates applied to this domain's index since it was first built; survives restarts.
    version: int = 0

    @property
    def failed(self) -> tuple[SkippedFile, ...]:
        return tuple(s for s in self.skipped if s.failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": utf8_name(self.domain),
            "files": len(self.files),
            "indexed_files": [utf8_name(path) for path in self.files],
            "passages": self.passages,
            "skipped": [s.to_dict() for s in self.skipped if not s.failed],
            "failed": [s.to_dict() for s in self.failed],
            "built_at": self.built_at,
            "updated_at": self.updated_at,
            "version": self.version,
            "embedding_model": self.embedding_model,
        }


@dataclass(frozen=True)
class IndexUpdate:
    """What one incremental update of a domain did (one line of `ragscope watch`).

    Files: `added` (newly indexed), `changed` (indexed before, content differs), `removed` (gone from the
    folder). Passages: `embedded` (run through the model), `reused` (vectors from the embedding cache, e.g. a
    renamed file or a moved paragraph), `dropped` (taken out of the index); `passages` is the total after.
    """

    domain: str
    version: int
    added: int = 0
    changed: int = 0
    removed: int = 0
    skipped: int = 0
    failed: int = 0
    embedded: int = 0
    reused: int = 0
    dropped: int = 0
    passages: int = 0
    seconds: float = 0.0
    # Built from scratch: a new domain, a first run, `index --rebuild`, or changed model/chunking settings.
    rebuilt: bool = False
    # The domain's folder is gone: its index was dropped from memory and disk.
    domain_removed: bool = False

    @property
    def applied(self) -> bool:
        """False when nothing had changed (the index was not touched, the version not bumped)."""
        files = self.added or self.changed or self.removed or self.skipped or self.failed
        return self.rebuilt or self.domain_removed or bool(files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": utf8_name(self.domain),
            "version": self.version,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "skipped": self.skipped,
            "failed": self.failed,
            "embedded": self.embedded,
            "reused": self.reused,
            "dropped": self.dropped,
            "passages": self.passages,
            "seconds": round(self.seconds, 4),
            "rebuilt": self.rebuilt,
            "domain_removed": self.domain_removed,
        }
