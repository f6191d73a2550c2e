"""The online flow of one checked question, behind the facade (`engine.py`).

embed query → search (dense kNN, BM25 or both fused; optional MMR) → distance threshold → evidence sentences →
build prompt → generate (stream) → check against the sources → `Answer`. With two hops (`Query.hops`), a second
search follows the first, with what the model says must still be looked up, and the answer reads both
(`Answer.rounds`).

Evidence sentences are scored with their own encoder when the index's is int8 (`[evidence] full_precision`):
int8's small errors reorder sentences whose scores are close, and the small model answers from what comes first.

Not here: the question's check on its way in, the knowledge folder's upkeep and the pipeline view (the facade),
and each step's own logic (`search/`, `generate/`): this module only wires them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from rag_engine.config import Config
from rag_engine.errors import IndexStoreError, SnapshotReplacedError
from rag_engine.generate.evidence import Excerpt, merge_excerpts, select_evidence
from rag_engine.generate.follow_up import follow_up_query
from rag_engine.generate.generation import Generator, TracedGenerator, generator_title
from rag_engine.generate.grounding import mark_tokens
from rag_engine.generate.prompt import build_norag_prompt, build_rag_prompt
from rag_engine.generate.verification import check_answer, whole_documents
from rag_engine.ingest.embedding import embedding_title
from rag_engine.ingest.knowledge import KnowledgeBase
from rag_engine.records import Answer, Hit, Passage, Query, Round
from rag_engine.seams import Embedder, Lazy
from rag_engine.search.fusion import Fusion
from rag_engine.search.retrieval import search, within_threshold
from rag_engine.search.rounds import hit_key, merge_rounds, unseen

TokenSink = Callable[[str], None]
Vector = npt.NDArray[np.float32]
# A search that finds its snapshot replaced by the indexer (pgvector) is run again on the new one, this often.
SEARCH_ATTEMPTS = 3


class AnswerFlow:
    """Answers checked questions from one knowledge store with the engine's models (shared, loaded on first use).

    `sentences` is the encoder of evidence sentences when it is not the index's own (None: the index's, and the
    question's vector from the search is reused)."""

    def __init__(
        self,
        config: Config,
        knowledge: KnowledgeBase,
        embedder: Lazy[Embedder],
        generator: Lazy[Generator],
        sentences: Lazy[Embedder] | None,
    ) -> None:
        self.config = config
        self._knowledge = knowledge
        self._embedder = embedder
        self._generator = generator
        self._sentences = sentences

    def answer(self, query: Query, use_rag: bool, on_token: TokenSink | None, started: float) -> Answer:
        question, domain, top_k, mode = query.question, query.domain, query.k, query.mode
        timings: dict[str, float] = {}
        with self._generator.loading():  # (if not loaded yet) while the question is embedded and searched
            if not use_rag:
                return self._generate(question, domain, [], None, top_k, timings, started, on_token)
            hits, vector = self.retrieve(question, query.domains, top_k, timings, mode)
            evidence = within_threshold(hits, self.config.retrieval.max_distance)
            if not evidence:
                answer = self._not_covered(question, domain, hits, top_k, timings, started)
            elif query.hops == 2:
                answer = self._answer_in_two_hops(query, hits, evidence, vector, timings, started, on_token)
            else:
                answer = self._generate(question, domain, hits, evidence, top_k, timings, started, on_token, vector)
        query_vector = tuple(float(x) for x in vector)
        return replace(answer, query_vector=query_vector, searched=query.domains, mode=mode)

    def answer_from(
        self, question: str, hits: Sequence[Hit], domain: str | None, on_token: TokenSink | None, started: float
    ) -> Answer:
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        query = self._embedder().embed([question])[0]
        timings["embed_query"] = time.perf_counter() - clock
        ranked = [replace(hit, rank=rank) for rank, hit in enumerate(hits, start=1)]
        answer = self._generate(question, domain, ranked, ranked, len(ranked), timings, started, on_token, query)
        return replace(answer, query_vector=tuple(float(x) for x in query))

    def retrieve(
        self, question: str, domains: Sequence[str], top_k: int, timings: dict[str, float], mode: str
    ) -> tuple[list[Hit], Vector]:
        clock = time.perf_counter()
        spaces = [self._knowledge.get(name).space for name in domains]
        embedder = self._embedder()
        timings["load"] = time.perf_counter() - clock

        clock = time.perf_counter()
        query = embedder.embed([question])[0]
        timings["embed_query"] = time.perf_counter() - clock

        clock = time.perf_counter()
        for space in spaces:
            if len(space.index) and space.index.dimension != len(query):
                raise IndexStoreError(
                    f"the {space.domain} index has dimension {space.index.dimension}, the embedder {len(query)}; "
                    "run `ragscope index` again"
                )
        retrieval, fusion = self.config.retrieval, Fusion.from_config(self.config.retrieval)
        for attempt in range(1, SEARCH_ATTEMPTS + 1):
            try:
                hits = search(query, spaces, top_k, retrieval.mmr_lambda, retrieval.mmr_candidates,
                              text=question, mode=mode, fusion=fusion)  # fmt: skip
                break
            except SnapshotReplacedError:  # the indexer committed a newer snapshot meanwhile: search that one
                if attempt == SEARCH_ATTEMPTS:
                    raise
                spaces = [self._knowledge.latest(name).space for name in domains]
        timings["search"] = time.perf_counter() - clock
        return hits, query

    def _excerpts(self, question: str, vector: Vector, evidence: Sequence[Hit]) -> list[Excerpt]:
        """The evidence sentences for `question` (whose search vector is `vector`) from `evidence`."""
        index = self._embedder()
        embedder = self._sentences() if self._sentences is not None else index
        if embedder is not index:  # the question too, in the sentences' space
            vector = embedder.embed([question])[0]
        return select_evidence(question, vector, evidence, embedder, self.config.evidence)

    def _answer_in_two_hops(
        self,
        query: Query,
        hits: Sequence[Hit],
        evidence: Sequence[Hit],
        vector: Vector,
        timings: dict[str, float],
        started: float,
        on_token: TokenSink | None,
    ) -> Answer:
        """Round 1 is done (`hits`); the model names what must be looked up next from its best excerpts (the
        bridging entity; `generate/follow_up.py`, with its fallback), round 2 searches with the question and that
        (passages round 1 already found left out), and the answer reads both rounds' evidence, taken in turn."""
        question, config = query.question, self.config
        first = self._excerpts(question, vector, evidence) if config.evidence.sentences else None
        contexts = [excerpt.text for excerpt in first] if first is not None else [hit.passage.text for hit in evidence]
        clock = time.perf_counter()
        generation = config.generation
        follow = follow_up_query(question, contexts, self._generator(), config.retrieval.follow_up_tokens,
                                 generation.max_context_tokens - config.retrieval.follow_up_tokens)  # fmt: skip
        timings["follow_up"] = time.perf_counter() - clock
        second: dict[str, float] = {}
        found, follow_vector = self.retrieve(follow.query, query.domains, query.k + len(hits), second, query.mode)
        more = unseen(found, hits, query.k)
        timings["search_2"] = second["embed_query"] + second["search"]
        more_evidence = within_threshold(more, config.retrieval.max_distance)
        excerpts: list[Excerpt] | None = None
        if first is not None:
            excerpts = merge_excerpts([first, self._excerpts(follow.query, follow_vector, more_evidence)])
        answer = self._generate(question, query.domain, merge_rounds([hits, more]),
                                merge_rounds([evidence, more_evidence]), query.k, timings, started, on_token,
                                vector, excerpts)  # fmt: skip
        used = {hit_key(hit) for hit in answer.hits if hit.in_prompt}
        marked = [tuple(replace(hit, in_prompt=hit_key(hit) in used) for hit in found) for found in (hits, more)]
        rounds = (Round(question, "question", marked[0]), Round(follow.query, follow.origin, marked[1], follow.said))
        return replace(answer, rounds=rounds)

    def _passages(self, domain: str) -> Iterable[Passage]:
        """Every stored passage of `domain`, for the support check's whole documents."""
        return self._knowledge.get(domain).space.passages.values()

    def models(self) -> dict[str, str]:
        """The models behind an answer, for its trace (the sentence encoder only when it is a separate one)."""
        config = self.config
        models = {"embedding": embedding_title(config.embedding), "generator": generator_title(config.generation)}
        sentences = self._sentences.made() if self._sentences is not None else None
        if sentences is not None and sentences is not self._embedder.made():
            models["evidence_embedding"] = sentences.name
        return models

    def _not_covered(
        self,
        question: str,
        domain: str | None,
        hits: Sequence[Hit],
        top_k: int,
        timings: dict[str, float],
        started: float,
    ) -> Answer:
        """Nothing within `max_distance`: no text is generated. The answer carries the facts (covered=False,
        the hits with their distances, the threshold, the mode) and each surface words them once."""
        timings["total"] = time.perf_counter() - started
        return Answer(
            question=question,
            domain=domain,
            used_rag=True,
            hits=tuple(hits),
            text="",
            prompt="",
            prompt_tokens=0,
            tokens=(),
            timings=timings,
            models=self.models(),
            top_k=top_k,
            max_distance=self.config.retrieval.max_distance,
            covered=False,
            grounding="refused",
        )

    def _generate(
        self,
        question: str,
        domain: str | None,
        hits: Sequence[Hit],
        evidence: Sequence[Hit] | None,
        top_k: int,
        timings: dict[str, float],
        started: float,
        on_token: TokenSink | None,
        query: Vector | None = None,
        excerpts: Sequence[Excerpt] | None = None,
    ) -> Answer:
        """Build the prompt (RAG when `evidence` is given) and stream the answer from the generator. `excerpts`
        are the evidence already chosen (two hops choose per round); otherwise they are chosen here."""
        clock = time.perf_counter()
        generator = self._generator()
        timings["load"] = timings.get("load", 0.0) + time.perf_counter() - clock
        generation = self.config.generation
        budget = generation.max_context_tokens - generation.max_answer_tokens
        clock = time.perf_counter()
        if evidence is None:
            built = build_norag_prompt(question, generator, self.config.prompt, budget)
        else:
            if excerpts is None and self.config.evidence.sentences and query is not None:
                excerpts = self._excerpts(question, query, evidence)
            built = build_rag_prompt(question, evidence, generator, self.config, budget, excerpts)
        timings["build_prompt"] = time.perf_counter() - clock

        clock = time.perf_counter()
        pieces: list[str] = []
        first_token: float | None = None
        for piece in generator.stream(built.text, generation.max_answer_tokens, built.context):
            if first_token is None:
                first_token = time.perf_counter() - started
            pieces.append(piece)
            if on_token:
                on_token(piece)
        timings["generate"] = time.perf_counter() - clock
        if first_token is not None:
            timings["first_token"] = first_token
        text = "".join(pieces).strip()

        clock = time.perf_counter()
        checked = None
        if evidence is not None:
            checked = check_answer(text, question, built.blocks, whole_documents(hits, self._passages))
        timings["check"] = time.perf_counter() - clock
        timings["total"] = time.perf_counter() - started

        in_prompt = set(built.passage_ids)
        marked_hits = tuple(replace(hit, in_prompt=hit.passage.id in in_prompt) for hit in hits)
        answer = Answer(
            question=question,
            domain=domain,
            used_rag=evidence is not None,
            text=text,
            hits=marked_hits,
            prompt=built.text,
            prompt_tokens=built.tokens,
            tokens=mark_tokens(pieces, built.context),
            timings=timings,
            models=self.models() | (generator.trace() if isinstance(generator, TracedGenerator) else {}),
            top_k=top_k,
            max_distance=self.config.retrieval.max_distance,
            covered=True,
            context_tokens=generation.max_context_tokens,
            contexts=tuple(block.text for block in built.blocks),
        )
        if checked is None:
            return answer
        sentences = tuple(s for block in built.blocks for s in block.sentences)
        return replace(
            answer,
            context_sentences=sentences,
            support=checked.claims,
            evidence=checked.evidence,
            grounding=checked.verdict,
        )
