"""The kNN-LM datastore: one entry per token position of a domain's passages, cached under the data folder.

An entry's key is the generator's final hidden state at that position (the input to the LM head, after the
final norm), its value the token that follows. The keys come from the same GGUF the pipeline view reads with
transformers (`AttentionModel.borrowed`), in float32, from batched forward passes of the base model only (the
LM head would cost a [tokens x vocabulary] matrix per batch and is not needed for keys). Each passage is read
on its own, from its first token: the last token of a passage has no next token and gives no entry.

Passages are taken in a stable order (file path, first line, id) until `cap` entries; a bigger domain is cut
there (its last passage part-way) and `Datastore.capped` says so. The cache file is named by a key made of the
GGUF (name, size, mtime), the transformers version, the domain's passages (ids, paths, texts) and the cap, so a
changed domain or model is built again; an older file of the domain is removed when a new one is written.

Not here: searching during generation and the mixed distribution (`knnlm.py`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag_engine.ingest.storage import atomic_write_bytes
from rag_engine.records import Passage

log = logging.getLogger(__name__)

# Padded tokens per forward pass while building: about 0.5 GB of activations for the 0.5B model in float32.
BATCH_TOKENS = 2048
# Bumped when the file's layout changes, so an old file is rebuilt rather than misread.
FORMAT = 1
_ARRAYS = ("keys", "values", "tokens", "passage_ids", "positions", "file_index")


@dataclass(frozen=True)
class Datastore:
    """Entry i: `keys[i]` (hidden state at token `positions[i]` of passage `passage_ids[i]` in
    `files[file_index[i]]`, whose token is `tokens[i]`) and `values[i]`, the token id that follows it."""

    domain: str
    key: str
    files: tuple[str, ...]
    keys: npt.NDArray[np.float32]
    values: npt.NDArray[np.int64]
    tokens: npt.NDArray[np.int64]
    passage_ids: npt.NDArray[np.int64]
    positions: npt.NDArray[np.int32]
    file_index: npt.NDArray[np.int32]
    cap: int
    # What the whole domain would give without the cap: entries and passages.
    domain_tokens: int
    domain_passages: int
    passages_kept: int
    build_seconds: float

    @property
    def size(self) -> int:
        return int(self.values.shape[0])

    @property
    def capped(self) -> bool:
        return self.domain_tokens > self.size

    def search_index(self) -> Any:
        """An exact FAISS index over the keys (`IndexFlatL2`: it returns squared L2 distances)."""
        import faiss

        index = faiss.IndexFlatL2(int(self.keys.shape[1]))
        index.add(self.keys)
        return index


@dataclass(frozen=True)
class StoreOrigin:
    """Where this run's datastore came from: built now or read from `path`, and how long that took."""

    path: Path
    built: bool
    seconds: float


def ordered_passages(passages: Sequence[Passage]) -> list[Passage]:
    """The stable order the cap cuts in: file path, first line, id."""
    return sorted(passages, key=lambda p: (p.path, p.line_start, p.id))


def store_key(passages: Sequence[Passage], gguf: Path, cap: int) -> str:
    """What the cached datastore depends on, hashed: the model file, the tokenizer/model code, the passages."""
    from transformers import __version__ as transformers_version

    digest = hashlib.sha256()
    stat = gguf.stat()
    digest.update(json.dumps([FORMAT, gguf.name, stat.st_size, stat.st_mtime_ns, transformers_version, cap]).encode())
    for passage in ordered_passages(passages):
        digest.update(json.dumps([passage.id, passage.path, passage.text]).encode("utf-8"))
    return digest.hexdigest()[:20]


def store_path(data_dir: Path, domain: str, key: str) -> Path:
    return data_dir / "knnlm" / domain / f"{key}.npz"


def load_or_build(
    tokenizer: Any, model: Any, domain: str, passages: Sequence[Passage], cap: int, gguf: Path, data_dir: Path
) -> tuple[Datastore, StoreOrigin]:
    """The domain's datastore from the cache if its key matches, else built now and cached (a cache that
    cannot be written only costs the next run another build)."""
    started = time.perf_counter()
    key = store_key(passages, gguf, cap)
    path = store_path(data_dir, domain, key)
    cached = _read(path, domain, key)
    if cached is not None:
        return cached, StoreOrigin(path, built=False, seconds=time.perf_counter() - started)
    store = build_store(tokenizer, model, domain, passages, cap, key)
    try:
        _write(path, store)
    except OSError as exc:
        log.warning("could not cache the kNN-LM datastore at %s: %s", path, exc)
    return store, StoreOrigin(path, built=True, seconds=time.perf_counter() - started)


def build_store(
    tokenizer: Any, model: Any, domain: str, passages: Sequence[Passage], cap: int, key: str = ""
) -> Datastore:
    """Tokenize the passages in order, keep the first `cap` entries, run the kept tokens through the model."""
    started = time.perf_counter()
    ordered = ordered_passages(passages)
    limit = int(getattr(model.config, "max_position_embeddings", 0) or 0) or None
    token_lists = [_token_ids(tokenizer, passage.text, limit) for passage in ordered]
    domain_tokens = sum(max(0, len(ids) - 1) for ids in token_lists)
    kept: list[tuple[Passage, list[int]]] = []
    room = cap
    for passage, ids in zip(ordered, token_lists, strict=True):
        if room <= 0:
            break
        if len(ids) < 2:
            continue
        ids = ids[: room + 1]  # n tokens give n - 1 entries
        kept.append((passage, ids))
        room -= len(ids) - 1
    files = tuple(dict.fromkeys(passage.path for passage, _ in kept))
    keys = _hidden_states(model, tokenizer, [ids for _, ids in kept])
    file_numbers = {path: number for number, path in enumerate(files)}
    return Datastore(
        domain=domain,
        key=key,
        files=files,
        keys=keys,
        values=np.array([t for _, ids in kept for t in ids[1:]], dtype=np.int64),
        tokens=np.array([t for _, ids in kept for t in ids[:-1]], dtype=np.int64),
        passage_ids=np.array([p.id for p, ids in kept for _ in ids[1:]], dtype=np.int64),
        positions=np.array([i for _, ids in kept for i in range(len(ids) - 1)], dtype=np.int32),
        file_index=np.array([file_numbers[p.path] for p, ids in kept for _ in ids[1:]], dtype=np.int32),
        cap=cap,
        domain_tokens=domain_tokens,
        domain_passages=len(ordered),
        passages_kept=len(kept),
        build_seconds=time.perf_counter() - started,
    )


def _token_ids(tokenizer: Any, text: str, limit: int | None) -> list[int]:
    ids = [int(token) for token in tokenizer(text, add_special_tokens=False)["input_ids"]]
    return ids[:limit] if limit else ids


def _hidden_states(model: Any, tokenizer: Any, sequences: Sequence[Sequence[int]]) -> npt.NDArray[np.float32]:
    """The final hidden state at every position but the last of each sequence, in order: [entries, width].

    Sequences of similar length share a batch (sorted by length, so little is padding); padding goes on the
    right, where a causal model's earlier positions never see it."""
    import torch

    width = int(model.config.hidden_size)
    offsets = np.cumsum([0, *(len(ids) - 1 for ids in sequences)])
    keys = np.zeros((int(offsets[-1]), width), dtype=np.float32)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    batches: list[list[int]] = []
    for number in order:
        longest = len(sequences[number])  # sorted: the newest is the longest of its batch
        if batches and (len(batches[-1]) + 1) * longest <= BATCH_TOKENS:
            batches[-1].append(number)
        else:
            batches.append([number])
    for batch in batches:
        longest = max(len(sequences[n]) for n in batch)
        ids = torch.full((len(batch), longest), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for row, number in enumerate(batch):
            ids[row, : len(sequences[number])] = torch.tensor(sequences[number], dtype=torch.long)
            mask[row, : len(sequences[number])] = 1
        with torch.no_grad():
            states = model.base_model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        states = states.float().numpy()
        for row, number in enumerate(batch):
            start, end = int(offsets[number]), int(offsets[number + 1])
            keys[start:end] = states[row, : end - start]
    return keys


def _write(path: Path, store: Datastore) -> None:
    meta = {
        "format": FORMAT,
        "domain": store.domain,
        "key": store.key,
        "files": list(store.files),
        "cap": store.cap,
        "domain_tokens": store.domain_tokens,
        "domain_passages": store.domain_passages,
        "passages_kept": store.passages_kept,
        "build_seconds": store.build_seconds,
    }
    buffer = io.BytesIO()
    arrays = {name: getattr(store, name) for name in _ARRAYS}
    np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8), **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    # Older datastores of this domain (another model, cap or version of the passages) are not read again.
    for other in path.parent.glob("*.npz"):
        if other != path:
            other.unlink(missing_ok=True)


def _read(path: Path, domain: str, key: str) -> Datastore | None:
    """The cached datastore, or None if there is none or it is unreadable or not this key's (then rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(bytes(archive["meta"]).decode("utf-8"))
            keys, values, tokens = archive["keys"], archive["values"], archive["tokens"]
            passage_ids, positions, file_index = archive["passage_ids"], archive["positions"], archive["file_index"]
        if meta.get("format") != FORMAT or meta.get("key") != key or meta.get("domain") != domain:
            return None
        return Datastore(
            domain=domain,
            key=key,
            files=tuple(str(f) for f in meta["files"]),
            cap=int(meta["cap"]),
            domain_tokens=int(meta["domain_tokens"]),
            domain_passages=int(meta["domain_passages"]),
            passages_kept=int(meta["passages_kept"]),
            build_seconds=float(meta["build_seconds"]),
            keys=keys,
            values=values,
            tokens=tokens,
            passage_ids=passage_ids,
            positions=positions,
            file_index=file_index,
        )
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        log.warning("ignoring an unreadable kNN-LM datastore %s: %s", path, exc)
        return None
