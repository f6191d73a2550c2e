"""The facade: `Engine.answer(question, domain)` runs the online flow and returns the whole trace;
`Engine.explain(answer)` shows that trace as the pipeline view (`explain/`).

embed query → search (dense kNN, BM25 or both fused; optional MMR) → distance threshold → build prompt →
generate (stream) → `Answer`. With two hops (`Query.hops`), a second search follows the first, with what the
model says must still be looked up, and the answer reads both (`Answer.rounds`).
Models are created on first use and kept (a `ragscope domains` never loads the language model); the language
model starts loading in the background as a question comes in, while it is embedded and searched. This module
wires the steps together; each step lives in its own module and knows nothing of the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from rag_engine.config import HOPS, MAX_K, RETRIEVAL_MODES, Config
from rag_engine.errors import IndexStoreError, QuestionError, SnapshotReplacedError
from rag_engine.explain.attention import AttentionModel
from rag_engine.explain.build import build_view
from rag_engine.explain.view import AttentionSource, PipelineView
from rag_engine.generate.backends import make_generator
from rag_engine.generate.evidence import Excerpt, merge_excerpts, select_evidence
from rag_engine.generate.follow_up import follow_up_query
from rag_engine.generate.generation import Generator, TracedGenerator, generator_title
from rag_engine.generate.grounding import mark_tokens
from rag_engine.generate.prompt import build_norag_prompt, build_rag_prompt
from rag_engine.generate.verification import check_answer, whole_documents
from rag_engine.ingest.embed_cache import EmbeddingCache
from rag_engine.ingest.embedding import SentenceTransformerEmbedder, embedding_title
from rag_engine.ingest.incremental import DomainIndex
from rag_engine.ingest.knowledge import KnowledgeBase, Progress
from rag_engine.records import Answer, DomainStats, Hit, IndexUpdate, Passage, Query, Round
from rag_engine.seams import Embedder, Lazy
from rag_engine.search.fusion import Fusion
from rag_engine.search.retrieval import search, within_threshold
from rag_engine.search.rounds import hit_key, merge_rounds, unseen

if TYPE_CHECKING:  # watchdog is imported only when a watcher is started
    from rag_engine.ingest.watcher import KnowledgeWatcher

TokenSink = Callable[[str], None]
# A search that finds its snapshot replaced by the indexer (pgvector) is run again on the new one, this often.
SEARCH_ATTEMPTS = 3


def generator_name(config: Config) -> str:
    return generator_title(config.generation)


class Engine:
    """One knowledge folder, one embedder, one generator; answers questions with or without retrieval."""

    def __init__(
        self,
        config: Config,
        embedder: Callable[[], Embedder] | None = None,
        generator: Callable[[], Generator] | None = None,
        knowledge: KnowledgeBase | None = None,
        attention: Callable[[], AttentionSource] | None = None,
    ) -> None:
        self.config = config
        self._embedder = Lazy(embedder or (lambda: SentenceTransformerEmbedder(config.embedding)))
        self._generator = Lazy(generator or (lambda: make_generator(config.generation, config.prompt.system)))
        # The pipeline view's attention model: a second copy of the generator, made only when a view asks.
        self._attention = Lazy(attention or (lambda: AttentionModel(config.generation)))
        # A store may be handed in (tests that watch its syncs); by default the engine makes its own.
        self._knowledge = knowledge or KnowledgeBase(config, self._embedder)

    def embedder(self) -> Embedder:
        """The embedding model (loaded on first call): what the evaluation harness embeds with too."""
        return self._embedder()

    def load_embedder_in_background(self) -> None:
        """Start loading the embedding model now, in the background (`ragscope ask` reads the indexes meanwhile)."""
        self._embedder.start()

    def generator(self) -> Generator:
        """The language model (loaded on first call): what the attention view tokenizes with too."""
        return self._generator()

    def with_config(self, config: Config) -> Engine:
        """Another engine on `config` that shares this one's models (loaded once): the SQuAD harness answers
        from a scratch knowledge folder with the models already in memory."""
        return Engine(config, embedder=self._embedder, generator=self._generator, attention=self._attention)

    def attention_model(self) -> AttentionSource:
        """The generator read by transformers (loaded on first call, shared with the pipeline view): what the lab
        measures attention and kNN-LM hidden states with."""
        return self._attention()

    def explain(self, answer: Answer, *, attention: bool = True) -> PipelineView:
        """The pipeline view of `answer`: its five steps, from its trace and the current snapshots of the
        domains it searched. `attention=False` leaves out the attention over the prompt (a note says so);
        otherwise the attention model is made on first use, and a model that cannot give it leaves a note why."""
        return build_view(answer, self.config, self.snapshot, self._attention if attention else None)

    # -- knowledge -----------------------------------------------------------------------------------
    def domains(self) -> list[str]:
        return self._knowledge.domain_names()

    def check_domain(self, domain: str) -> str:
        """`domain` if it is a subfolder of the knowledge folder, else an `UnknownDomainError` naming the known."""
        return self._knowledge.check_domain(domain)

    @property
    def folder(self) -> Path:
        """The knowledge folder: one subfolder per domain."""
        return self._knowledge.root

    def domain_folder(self, domain: str) -> Path:
        """The folder of a known domain: where an upload goes and the questions file lives."""
        return self._knowledge.root / self._knowledge.check_domain(domain)

    def domain_files(self, domain: str) -> Iterator[tuple[str, Path]]:
        """(relative path, absolute path) of every file the domain's index would read."""
        return self._knowledge.files(domain)

    def refused_domains(self) -> dict[str, str]:
        """Subfolders that are not domains (a name that cannot be shown, a link out of the folder), with why."""
        return self._knowledge.refused_domains()

    def known_domains(self) -> set[str]:
        """Domains with an index in memory (a removed folder's index is forgotten by the next sync)."""
        return self._knowledge.known_domains()

    def snapshot(self, domain: str, progress: Progress | None = None) -> DomainIndex:
        """The domain's current index snapshot (synced first unless a watcher keeps it fresh); read-only."""
        return self._knowledge.get(domain, progress)

    def index_file(self, domain: str) -> Path:
        """Where the domain's index is stored."""
        return self._knowledge.index_path(domain)

    def embedding_cache(self) -> EmbeddingCache:
        return self._knowledge.embedding_cache()

    def sync_all(self) -> list[IndexUpdate]:
        """Index every domain's changes, and forget the indexes of domains whose folder is gone."""
        return self._knowledge.sync_all()

    @property
    def watched(self) -> bool:
        """True while a watcher keeps the indexes fresh (queries then use the current snapshot as is)."""
        return self._knowledge.watched

    def domain_stats(self, domain: str, progress: Progress | None = None) -> DomainStats:
        """The domain's index status (indexing what changed first, unless a watcher keeps it fresh)."""
        return self._knowledge.get(domain, progress).stats

    def index(self, domain: str, progress: Progress | None = None, full: bool = False) -> IndexUpdate:
        """Apply the folder's changes to the domain's index; `full` re-reads and re-embeds everything."""
        return self._knowledge.sync(domain, progress, full)

    def watch(
        self,
        on_update: Callable[[IndexUpdate], None],
        on_error: Callable[[str, Exception], None] | None = None,
        initial_sync: bool = True,
    ) -> KnowledgeWatcher:
        """Follow the knowledge folder from now on (a started watcher; `stop()` it, or use it in `with`)."""
        from rag_engine.ingest.watcher import KnowledgeWatcher

        return KnowledgeWatcher(self._knowledge, on_update, self.config.watch, on_error).start(initial_sync)

    # -- questions -----------------------------------------------------------------------------------
    def check(
        self,
        question: str,
        domain: str | None = None,
        k: int | None = None,
        mode: str | None = None,
        hops: int | None = None,
    ) -> Query:
        """The one check of a question on its way in, before any model is loaded: the question stripped and
        within `prompt.max_question_chars`, the domain known (None: every domain), 1 <= k <= MAX_K, a known
        retrieval mode, 1 or 2 retrieval rounds (`hops`, default `retrieval.hops`). Raises `QuestionError` or
        `UnknownDomainError` with the reason."""
        cleaned = _clean_question(question, self.config)
        top_k = k if k is not None else self.config.retrieval.top_k
        if not 1 <= top_k <= MAX_K:
            raise QuestionError(f"k must be between 1 and {MAX_K}, not {top_k}")
        mode = mode if mode is not None else self.config.retrieval.mode
        if mode not in RETRIEVAL_MODES:
            raise QuestionError(f"unknown retrieval mode {mode!r} (known: {', '.join(RETRIEVAL_MODES)})")
        hops = hops if hops is not None else self.config.retrieval.hops
        if hops not in HOPS:
            raise QuestionError(f"hops must be one of {', '.join(map(str, HOPS))}, not {hops}")
        if domain:
            domain = self._knowledge.check_domain(domain)
            domains: tuple[str, ...] = (domain,)
        else:
            domain, domains = None, tuple(self._knowledge.domain_names())
        return Query(question=cleaned, domain=domain, domains=domains, k=top_k, mode=mode, hops=hops)

    def answer(
        self,
        query: Query | str,
        domain: str | None = None,
        *,
        k: int | None = None,
        use_rag: bool = True,
        on_token: TokenSink | None = None,
        mode: str | None = None,
    ) -> Answer:
        """Answer one checked `Query` (a plain string is checked first, with `domain`, `k` and `mode`; a
        `Query` carries its own). `use_rag=False` skips retrieval: the model's weights alone. A query with two
        hops searches again with what the model says is still missing (`_answer_in_two_hops`)."""
        started = time.perf_counter()
        if not isinstance(query, Query):
            query = self.check(query, domain, k, mode)
        question, domain, top_k, mode = query.question, query.domain, query.k, query.mode
        timings: dict[str, float] = {}
        with self._generator.loading():  # (if not loaded yet) while the question is embedded and searched
            if not use_rag:
                return self._generate(question, domain, [], None, top_k, timings, started, on_token)
            hits, vector = self._retrieve(question, query.domains, top_k, timings, mode)
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
        self, question: str, hits: Sequence[Hit], domain: str | None = None, on_token: TokenSink | None = None
    ) -> Answer:
        """Answer from the given passages as the only context (no search, no threshold): the evaluation's
        oracle column, where the gold file's best passage is handed to the model directly."""
        started = time.perf_counter()
        question = _clean_question(question, self.config)
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        query = self._embedder().embed([question])[0]
        timings["embed_query"] = time.perf_counter() - clock
        ranked = [replace(hit, rank=rank) for rank, hit in enumerate(hits, start=1)]
        answer = self._generate(question, domain, ranked, ranked, len(ranked), timings, started, on_token, query)
        return replace(answer, query_vector=tuple(float(x) for x in query))

    def retrieve(
        self, question: Query | str, domain: str | None = None, k: int | None = None, mode: str | None = None
    ) -> list[Hit]:
        """Only the retrieval steps (embed the query, search in `mode`, MMR): the best passages, best first.
        Unlike `answer`, `k` may exceed MAX_K here: the evaluation ranks whole domains."""
        if not isinstance(question, Query):
            wanted = k if k is not None else self.config.retrieval.top_k
            question = replace(self.check(question, domain, None, mode), k=wanted)
            if wanted < 1:
                raise QuestionError("k must be at least 1")
        return self._retrieve(question.question, question.domains, question.k, {}, question.mode)[0]

    def _retrieve(
        self, question: str, domains: Sequence[str], top_k: int, timings: dict[str, float], mode: str
    ) -> tuple[list[Hit], npt.NDArray[np.float32]]:
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

    def _answer_in_two_hops(
        self,
        query: Query,
        hits: Sequence[Hit],
        evidence: Sequence[Hit],
        vector: npt.NDArray[np.float32],
        timings: dict[str, float],
        started: float,
        on_token: TokenSink | None,
    ) -> Answer:
        """Round 1 is done (`hits`); the model names what must be looked up next from its best excerpts (the
        bridging entity; `generate/follow_up.py`, with its fallback), round 2 searches with the question and that
        (passages round 1 already found left out), and the answer reads both rounds' evidence, taken in turn."""
        question, config, embedder = query.question, self.config, self._embedder()
        first = None
        if config.evidence.sentences:
            first = select_evidence(question, vector, evidence, embedder, config.evidence)
        contexts = [excerpt.text for excerpt in first] if first is not None else [hit.passage.text for hit in evidence]
        clock = time.perf_counter()
        generation = config.generation
        follow = follow_up_query(question, contexts, self._generator(), config.retrieval.follow_up_tokens,
                                 generation.max_context_tokens - config.retrieval.follow_up_tokens)  # fmt: skip
        timings["follow_up"] = time.perf_counter() - clock
        second: dict[str, float] = {}
        found, follow_vector = self._retrieve(follow.query, query.domains, query.k + len(hits), second, query.mode)
        more = unseen(found, hits, query.k)
        timings["search_2"] = second["embed_query"] + second["search"]
        more_evidence = within_threshold(more, config.retrieval.max_distance)
        excerpts: list[Excerpt] | None = None
        if first is not None:
            follow_excerpts = select_evidence(follow.query, follow_vector, more_evidence, embedder, config.evidence)
            excerpts = merge_excerpts([first, follow_excerpts])
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

    def _models(self) -> dict[str, str]:
        return {"embedding": embedding_title(self.config.embedding), "generator": generator_name(self.config)}

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
            models=self._models(),
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
        query: npt.NDArray[np.float32] | None = None,
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
                excerpts = select_evidence(question, query, evidence, self._embedder(), self.config.evidence)
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
            models=self._models() | (generator.trace() if isinstance(generator, TracedGenerator) else {}),
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


def _clean_question(question: str, config: Config) -> str:
    """The question stripped, or a `QuestionError` if it is empty or too long."""
    cleaned = question.strip()
    if not cleaned:
        raise QuestionError("the question is empty")
    limit = config.prompt.max_question_chars
    if len(cleaned) > limit:
        raise QuestionError(f"the question is {len(cleaned):,} characters long; the limit is {limit:,}")
    return cleaned
