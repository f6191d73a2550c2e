"""ONNX copies of a sentence-transformers model for `[embedding] backend = "onnx" | "onnx-int8"`: made once,
offline, with sentence-transformers' own exporter (and, for int8, its `export_dynamic_quantized_onnx_model`),
then reused by every process.

An export is a complete sentence-transformers model folder (tokenizer, pooling, `onnx/<file>.onnx`) under
`<export root>/<model folder name>/<variant>-<fingerprint>/`. The fingerprint covers the source model's files
and the versions of every library that shapes the export, so a new model or a new exporter makes a new folder
rather than reusing a stale one. It is written into a hidden temp folder and renamed into place only when
complete (with its `ragscope-export.json`): a crash, or two processes exporting at once, can never leave a
half export that is used; the loser of a race throws its copy away, and a leftover temp folder is ignored and,
once stale, deleted.

The int8 variant's kernel set (arm64, avx2, avx512, avx512_vnni) is chosen from the CPU at run time
(`int8_config`), so the variant, the folder and the embedding cache's key all name it.

Not here: loading a model for encoding (`embedding.py`), the vectors' cache (`embed_cache.py`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import secrets
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag_engine.errors import ModelError
from rag_engine.ingest.embed_cache import model_folder_name

# The quantisation configurations sentence-transformers knows, each for a family of CPU kernels.
INT8_CONFIGS = ("arm64", "avx2", "avx512", "avx512_vnni")
MARKER_NAME = "ragscope-export.json"
TEMP_SUFFIX = ".tmp"
# A temp export folder this old belongs to a process that died (an export takes seconds): deleted on sight.
STALE_EXPORT_SECONDS = 3600.0
# The libraries whose versions change what an export contains.
_EXPORT_LIBRARIES = (
    "sentence-transformers",
    "transformers",
    "torch",
    "optimum",
    "optimum-onnx",
    "onnx",
    "onnxruntime",
)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The x86 feature flags of the first CPU in `cpuinfo` (empty where there is no such file or line)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon and name.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def int8_config(machine: str | None = None, flags: frozenset[str] | None = None) -> str:
    """The quantisation configuration for this CPU: the int8 kernels it runs fastest (measured in
    benchmarks/bench_encoder.py: on AVX-512 VNNI, avx512_vnni beats avx512 and both beat avx2 by far)."""
    machine = (machine if machine is not None else platform.machine()).lower()
    if machine in ("arm64", "aarch64"):
        return "arm64"
    flags = flags if flags is not None else cpu_flags()
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if {"avx512f", "avx512bw"} <= flags:
        return "avx512"
    # avx2's layout (unsigned weights, reduced range) is the one every x86-64 CPU computes correctly.
    return "avx2"


def variant_name(backend: str, quantization: str | None = None) -> str:
    """The name of the export `backend` uses: "onnx" (float32), or "onnx-int8-<kernels>" (quantised)."""
    if backend == "onnx":
        return "onnx"
    if backend == "onnx-int8":
        return f"onnx-int8-{quantization or int8_config()}"
    raise ValueError(f"no ONNX export for backend {backend!r}")


def onnx_file(variant: str) -> str:
    """The model file of a variant, relative to its export folder."""
    if variant == "onnx":
        return "onnx/model.onnx"
    return f"onnx/model_{_quantization(variant)}.onnx"


def default_export_root() -> Path:
    """$XDG_CACHE_HOME/ragscope/models: one export per machine and user, shared by every data folder (the
    generator's assembled GGUF lives there too)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ragscope" / "models"


def export_folder(root: Path, model: str, source: Path, variant: str) -> Path:
    """Where the export of `source` (the folder of the model `[embedding] model` names) as `variant` lives,
    whether or not it is made yet."""
    return root / model_folder_name(model) / f"{variant}-{_fingerprint(source, variant)}"


def ensure_export(root: Path, model: str, source: Path, variant: str) -> Path:
    """The finished export folder of `source` as `variant`, made now if there is none (a few seconds)."""
    target = export_folder(root, model, source, variant)
    if _finished(target, variant):
        return target
    parent = target.parent
    temporary = parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(parent, time.time())
        if target.exists():
            if _finished(target, variant):  # another process renamed its copy into place meanwhile
                return target
            shutil.rmtree(target)  # not made by this code, which renames only finished folders: start again
        _export_into(temporary, source, variant)
        try:
            os.rename(temporary, target)
        except OSError:
            # Another process renamed its finished copy first; it is as good as ours.
            if not _finished(target, variant):
                raise
    except (OSError, RuntimeError, ValueError) as exc:  # a full disk, or an exporter that cannot trace the model
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ModelError(f"cannot export {source.name} to ONNX under {parent}: {reason}") from exc
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target


def _finished(folder: Path, variant: str) -> bool:
    return (folder / MARKER_NAME).is_file() and (folder / onnx_file(variant)).is_file()


def _export_into(folder: Path, source: Path, variant: str) -> None:
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    with _quiet():
        # `export=True`: convert the PyTorch weights now; the source folder has (and gets) no ONNX file.
        model = SentenceTransformer(
            str(source), backend="onnx", device="cpu", model_kwargs={"export": True, "provider": "CPUExecutionProvider"}
        )
        model.save(str(folder))
        if variant != "onnx":
            quantization = _quantization(variant)
            export_dynamic_quantized_onnx_model(model, quantization, str(folder), file_suffix=quantization)
            # The float32 graph was only the quantiser's input; the int8 folder need not carry its 90 MB.
            (folder / onnx_file("onnx")).unlink(missing_ok=True)
    if not (folder / onnx_file(variant)).is_file():
        raise ModelError(f"the ONNX export of {source.name} wrote no {onnx_file(variant)}")
    marker = {"source": str(source), "variant": variant, "file": onnx_file(variant), **_fingerprint_facts(source)}
    (folder / MARKER_NAME).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


def _quantization(variant: str) -> str:
    quantization = variant.removeprefix("onnx-int8-")
    if quantization == variant or quantization not in INT8_CONFIGS:
        raise ValueError(f"not an int8 variant: {variant!r}")
    return quantization


def _fingerprint_facts(source: Path) -> dict[str, Any]:
    files = sorted(path for path in source.rglob("*") if path.is_file())
    return {
        "files": {str(path.relative_to(source)): [path.stat().st_size, path.stat().st_mtime_ns] for path in files},
        "libraries": {name: _version(name) for name in _EXPORT_LIBRARIES},
    }


def _fingerprint(source: Path, variant: str) -> str:
    facts = {"variant": variant, **_fingerprint_facts(source)}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:12]


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's own chatter (the tracer's warnings, "saving the export is recommended", which this module
    does) would land in the terminal and the bot's log once per machine; it says nothing to a user."""
    loggers = [logging.getLogger(name) for name in ("sentence_transformers", "transformers", "optimum")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def _remove_stale_temps(folder: Path, now: float) -> None:
    """Delete temp export folders of processes killed mid-export (younger ones may still be in progress)."""
    for leftover in folder.glob(f".*{TEMP_SUFFIX}"):
        try:
            if now - leftover.stat().st_mtime > STALE_EXPORT_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)
        except FileNotFoundError:
            continue
