"""The facade: `Engine.answer(question, domain)` runs the online flow and returns the whole trace;
`Engine.explain(answer)` shows that trace as the pipeline view (`explain/`).

The facade checks a question on its way in (`check`), hands it to the answer flow (`answering.py`: embed query →
search → threshold → evidence → prompt → generate → check, in one or two hops) and keeps the knowledge folder's
indexes (`ingest/`). Models are created on first use and kept (a `ragscope domains` never loads the language
model); the language model starts loading in the background as a question comes in, while it is embedded and
searched. Each step lives in its own module and knows nothing of the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from rag_engine.answering import AnswerFlow, TokenSink
from rag_engine.config import HOPS, MAX_K, RETRIEVAL_MODES, Config
from rag_engine.errors import QuestionError
from rag_engine.explain.attention import AttentionModel
from rag_engine.explain.build import build_view
from rag_engine.explain.view import AttentionSource, PipelineView
from rag_engine.generate.backends import make_generator
from rag_engine.generate.generation import Generator, generator_title
from rag_engine.ingest.embed_cache import EmbeddingCache
from rag_engine.ingest.embedding import SentenceTransformerEmbedder, float32_sentences, sentence_embedding
from rag_engine.ingest.incremental import DomainIndex
from rag_engine.ingest.knowledge import KnowledgeBase, Progress
from rag_engine.records import Answer, DomainStats, Hit, IndexUpdate, Query
from rag_engine.seams import Embedder, Lazy

if TYPE_CHECKING:  # watchdog is imported only when a watcher is started
    from rag_engine.ingest.watcher import KnowledgeWatcher

__all__ = ["Engine", "TokenSink", "generator_name"]


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
        sentence_embedder: Callable[[], Embedder] | None = None,
    ) -> None:
        self.config = config
        self._embedder = Lazy(embedder or (lambda: SentenceTransformerEmbedder(config.embedding)))
        self._generator = Lazy(generator or (lambda: make_generator(config.generation, config.prompt.system)))
        # The pipeline view's attention model: a second copy of the generator, made only when a view asks.
        self._attention = Lazy(attention or (lambda: AttentionModel(config.generation)))
        # Evidence sentences get a float32 encoder of their own when the index's is int8 (see answering.py);
        # none at all when the prompt carries whole passages (a cold `ask` would load it in the background).
        evidence = config.evidence
        sentences = sentence_embedding(config.embedding, evidence.sentences and evidence.full_precision)
        self._sentences: Lazy[Embedder] | None = None
        if sentence_embedder is not None:
            self._sentences = Lazy(sentence_embedder)
        elif sentences is not None:
            self._sentences = Lazy(partial(float32_sentences, self._embedder, sentences))
        # A store may be handed in (tests that watch its syncs); by default the engine makes its own.
        self._knowledge = knowledge or KnowledgeBase(config, self._embedder)
        self._flow = AnswerFlow(config, self._knowledge, self._embedder, self._generator, self._sentences)

    def embedder(self) -> Embedder:
        """The embedding model (loaded on first call): what the evaluation harness embeds with too."""
        return self._embedder()

    def sentence_embedder(self) -> Embedder:
        """The encoder of evidence sentences (loaded on first call): its own float32 model beside an int8 index
        encoder, else the embedder itself. Hand it to another engine to share it."""
        return self._sentences() if self._sentences is not None else self._embedder()

    def load_embedder_in_background(self) -> None:
        """Start loading the embedding model now, in the background (`ragscope ask` reads the indexes meanwhile)."""
        self._embedder.start()
        if self._sentences is not None:
            self._sentences.start()

    def generator(self) -> Generator:
        """The language model (loaded on first call): what the attention view tokenizes with too."""
        return self._generator()

    def with_config(self, config: Config) -> Engine:
        """Another engine on `config` that shares this one's models (loaded once): the SQuAD harness answers
        from a scratch knowledge folder with the models already in memory."""
        return Engine(config, embedder=self._embedder, generator=self._generator, attention=self._attention,
                      sentence_embedder=self._sentences)  # fmt: skip

    def models(self) -> dict[str, str]:
        """The models an answer is made with, as its trace names them (embedding with its backend, generator)."""
        return self._flow.models()

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
        hops searches again with what the model says is still missing (`answering.py`)."""
        started = time.perf_counter()
        if not isinstance(query, Query):
            query = self.check(query, domain, k, mode)
        return self._flow.answer(query, use_rag, on_token, started)

    def answer_from(
        self, question: str, hits: Sequence[Hit], domain: str | None = None, on_token: TokenSink | None = None
    ) -> Answer:
        """Answer from the given passages as the only context (no search, no threshold): the evaluation's
        oracle column, where the gold file's best passage is handed to the model directly."""
        started = time.perf_counter()
        return self._flow.answer_from(_clean_question(question, self.config), hits, domain, on_token, started)

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
        return self._flow.retrieve(question.question, question.domains, question.k, {}, question.mode)[0]


def _clean_question(question: str, config: Config) -> str:
    """The question stripped, or a `QuestionError` if it is empty or too long."""
    cleaned = question.strip()
    if not cleaned:
        raise QuestionError("the question is empty")
    limit = config.prompt.max_question_chars
    if len(cleaned) > limit:
        raise QuestionError(f"the question is {len(cleaned):,} characters long; the limit is {limit:,}")
    return cleaned
