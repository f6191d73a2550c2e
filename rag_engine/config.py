"""The configuration: the settings' frozen dataclasses loaded once from `config.toml` with `tomllib`.

Every setting has a default here, so a missing file or section means "the shipped defaults". Relative paths
in the file are resolved against the file's own folder. The engine's sections are checked here; a surface's
section (`[bot]`, see `SURFACE_SECTIONS`) is accepted and kept raw for that surface to build and check
(`bot/config.py`). Secrets are never stored in the file: at most it names the environment variable that holds
one (`bot.token_env`). Reading the environment is the caller's business. The section dataclasses, with their
defaults, are `settings.py`'s; every name of it is re-exported here, so callers import from `config`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from rag_engine.errors import ConfigError
from rag_engine.settings import (
    CONFIG_ENV,
    DEFAULT_CONFIG_NAME,
    EMBEDDING_BACKENDS,
    FUSION_METHODS,
    HOPS,
    INDEX_BACKENDS,
    MAX_K,
    RETRIEVAL_MODES,
    SURFACE_SECTIONS,
    ChunkingConfig,
    Config,
    EmbeddingConfig,
    EvidenceConfig,
    GenerationConfig,
    IndexConfig,
    LabConfig,
    LoadingConfig,
    PathsConfig,
    PromptConfig,
    RetrievalConfig,
    WatchConfig,
)

# Re-exported: every caller imports the settings from here.
__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_NAME",
    "EMBEDDING_BACKENDS",
    "FUSION_METHODS",
    "HOPS",
    "INDEX_BACKENDS",
    "MAX_K",
    "RETRIEVAL_MODES",
    "SURFACE_SECTIONS",
    "ChunkingConfig",
    "Config",
    "EmbeddingConfig",
    "EvidenceConfig",
    "GenerationConfig",
    "IndexConfig",
    "LabConfig",
    "LoadingConfig",
    "PathsConfig",
    "PromptConfig",
    "RetrievalConfig",
    "WatchConfig",
    "find_config_path",
    "load_config",
    "section",
    "with_overrides",
]


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
        lab=section(LabConfig, raw, "lab"),
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
    "lab": LabConfig,
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
    if retrieval.hops not in HOPS:
        raise ConfigError(f"retrieval.hops must be one of {', '.join(map(str, HOPS))}, not {retrieval.hops!r}")
    if retrieval.follow_up_tokens < 1:
        raise ConfigError("retrieval.follow_up_tokens must be at least 1")
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
    _validate_embedding(config.embedding)


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
        raise ConfigError('index.read_only needs index.backend = "pgvector" (a FAISS index lives in one process)')
    if index.approximate_above_passages < 1:
        raise ConfigError("index.approximate_above_passages must be at least 1")


def _validate_embedding(embedding: EmbeddingConfig) -> None:
    if embedding.backend not in EMBEDDING_BACKENDS:
        known = ", ".join(EMBEDDING_BACKENDS)
        raise ConfigError(f"embedding.backend must be one of {known}, not {embedding.backend!r}")
    if embedding.backend != "torch" and embedding.device != "cpu":
        # ONNX Runtime is installed with its CPU provider only; a GPU runs the torch backend.
        raise ConfigError(f'embedding.backend = "{embedding.backend}" runs on the CPU: set embedding.device = "cpu"')
    if embedding.batch_size < 1:
        raise ConfigError("embedding.batch_size must be at least 1")
