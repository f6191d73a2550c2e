"""The knowledge store: domains (subfolders of the knowledge folder) and their persisted indexes.

For each domain it walks the files, loads and chunks them, embeds the passages, builds a FAISS index and
persists it (one file per domain under the data directory, replaced atomically). A stored index is reused
only if it was made from the same files (size + mtime), the same embedding model and the same chunking and
loading settings; otherwise the domain is rebuilt. Watching the folder is not done here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag_engine.chunking import chunk
from rag_engine.config import Config
from rag_engine.embedding import Embedder
from rag_engine.errors import DocumentError, IndexStoreError, KnowledgeFolderError, UnknownDomainError
from rag_engine.index import FaissIndex, load_domain_index, save_domain_index
from rag_engine.loading import is_candidate, load_document
from rag_engine.records import DomainStats, Passage, SkippedFile
from rag_engine.retrieval import SearchSpace

log = logging.getLogger(__name__)

INDEX_FORMAT = 1
# Texts handed to the embedder per call: large enough for its own length-sorted batching, small enough
# for a progress bar that moves.
EMBED_GROUP_SIZE = 256

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DomainIndex:
    """An immutable snapshot of one domain: swap the whole object, never mutate it."""

    stats: DomainStats
    space: SearchSpace


class KnowledgeBase:
    """Owns the domain indexes of one knowledge folder; the embedder is created on first need."""

    def __init__(self, config: Config, embedder: Callable[[], Embedder]) -> None:
        self.config = config
        self.root = Path(config.paths.knowledge_dir)
        self.data_dir = Path(config.paths.data_dir)
        self._embedder_factory = embedder
        self._loaded: dict[str, DomainIndex] = {}
        self._lock = threading.Lock()

    # -- domains -------------------------------------------------------------------------------------
    def domain_names(self) -> list[str]:
        if not self.root.is_dir():
            raise KnowledgeFolderError(f"knowledge folder not found: {self.root}")
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))

    def check_domain(self, domain: str) -> str:
        names = self.domain_names()
        if domain not in names:
            raise UnknownDomainError(domain, names)
        return domain

    def files(self, domain: str) -> Iterator[tuple[str, Path]]:
        """(relative posix path, absolute path) of every candidate file, hidden folders excluded."""
        folder = self.root / domain
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if any(part.startswith(".") for part in relative.parts[:-1]):
                continue
            if path.is_file() and is_candidate(path, self.config.loading):
                yield relative.as_posix(), path

    def index_path(self, domain: str) -> Path:
        return self.data_dir / "indexes" / f"{domain}.npz"

    # -- fingerprints --------------------------------------------------------------------------------
    def _settings(self, embedder_name: str) -> dict[str, Any]:
        """Everything that changes the vectors or the passages; a stored index must match it exactly.
        The model is named by config, so checking a stored index never needs to load the model."""
        loading = asdict(self.config.loading)
        return {
            "format": INDEX_FORMAT,
            "embedding_model": embedder_name,
            "chunking": asdict(self.config.chunking),
            "loading": {key: list(value) if isinstance(value, tuple) else value for key, value in loading.items()},
        }

    def _manifest(self, domain: str) -> dict[str, list[int]]:
        manifest: dict[str, list[int]] = {}
        for relative, path in self.files(domain):
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            manifest[relative] = [info.st_size, info.st_mtime_ns]
        return manifest

    # -- access --------------------------------------------------------------------------------------
    def get(self, domain: str, progress: Progress | None = None) -> DomainIndex:
        """The domain's index: in memory, else from disk if still fresh, else built now."""
        self.check_domain(domain)
        with self._lock:
            current = self._loaded.get(domain)
            manifest = self._manifest(domain)
            if current is not None and current.stats.manifest == manifest:
                return current
            loaded = self._load_fresh(domain, manifest)
            if loaded is None:
                loaded = self._build(domain, manifest, progress)
            self._loaded[domain] = loaded
            return loaded

    def build(self, domain: str, progress: Progress | None = None) -> DomainIndex:
        """Rebuild from the files whatever is stored, and persist."""
        self.check_domain(domain)
        with self._lock:
            built = self._build(domain, self._manifest(domain), progress)
            self._loaded[domain] = built
            return built

    def _embedder(self) -> Embedder:
        return self._embedder_factory()

    def _load_fresh(self, domain: str, manifest: dict[str, list[int]]) -> DomainIndex | None:
        path = self.index_path(domain)
        try:
            index, meta = load_domain_index(path)
        except FileNotFoundError:
            return None
        except IndexStoreError as exc:
            log.warning("rebuilding %s: %s", domain, exc)
            return None
        if meta.get("settings") != self._settings(self.config.embedding.model):
            log.info("rebuilding %s: it was indexed with other model or chunking settings", domain)
            return None
        if meta.get("manifest") != manifest:
            log.info("rebuilding %s: its files changed since it was indexed", domain)
            return None
        passages = [Passage.from_dict(raw) for raw in meta["passages"]]
        stats = DomainStats(
            domain=domain,
            files=tuple(meta["files"]),
            passages=len(passages),
            skipped=tuple(SkippedFile(**raw) for raw in meta["skipped"]),
            built_at=float(meta["built_at"]),
            embedding_model=self.config.embedding.model,
            manifest=manifest,
        )
        return DomainIndex(stats, SearchSpace(domain, index, {p.id: p for p in passages}))

    def _build(self, domain: str, manifest: dict[str, list[int]], progress: Progress | None) -> DomainIndex:
        passages: list[Passage] = []
        files: list[str] = []
        skipped: list[SkippedFile] = []
        for relative, path in self.files(domain):
            try:
                document = load_document(path, relative, self.config.loading)
            except DocumentError as exc:
                log.warning("skipped %s/%s: %s", domain, relative, exc)
                skipped.append(SkippedFile(relative, str(exc)))
                continue
            passages.extend(chunk(document, self.config.chunking))
            files.append(relative)
        # The same passage text at the same place twice (a copied file keeps its own path, so this is rare)
        # would collide in the id map; keep the first.
        unique = list({p.id: p for p in passages}.values())
        embedder = self._embedder()
        index = FaissIndex(embedder.dimension)
        total = len(unique)
        if progress:
            progress(0, total)
        # Longest first, so each batch pads to similar lengths across groups (as one big encode call would);
        # the id map makes the insertion order irrelevant to search.
        by_length = sorted(unique, key=lambda p: len(p.text), reverse=True)
        for start in range(0, total, EMBED_GROUP_SIZE):
            group = by_length[start : start + EMBED_GROUP_SIZE]
            index.add([p.id for p in group], embedder.embed([p.text for p in group]))
            if progress:
                progress(min(start + EMBED_GROUP_SIZE, total), total)
        stats = DomainStats(
            domain=domain,
            files=tuple(files),
            passages=total,
            skipped=tuple(skipped),
            built_at=time.time(),
            embedding_model=self.config.embedding.model,
            manifest=manifest,
        )
        meta = {
            "settings": self._settings(self.config.embedding.model),
            "manifest": manifest,
            "files": files,
            "skipped": [asdict(s) for s in skipped],
            "passages": [p.to_dict() for p in unique],
            "built_at": stats.built_at,
        }
        save_domain_index(self.index_path(domain), index, meta)
        log.info("indexed %s: %d files, %d passages, %d skipped", domain, len(files), total, len(skipped))
        return DomainIndex(stats, SearchSpace(domain, index, {p.id: p for p in unique}))
