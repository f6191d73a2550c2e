"""`[embedding] backend`: torch, onnx and onnx-int8.

Fast tests of the logic: the int8 kernels chosen from the CPU, the names the backends give the vectors and the
trace, the settings' checks, and a domain rebuilt (never mixed) when the backend changes, with fake embedders.
Then the real thing, with the bundled all-MiniLM-L6-v2 exported once for the module into a temporary folder:
each backend gives unit vectors close to torch's, an export is reused rather than made again, a leftover temp
export does not break the next load, and an onnx-int8 index never holds a torch vector.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from rag_engine.config import Config, EmbeddingConfig, load_config, with_overrides
from rag_engine.engine import Engine
from rag_engine.errors import ConfigError, ModelError
from rag_engine.ingest import onnx_export
from rag_engine.ingest.embedding import (
    SentenceTransformerEmbedder,
    bundled_model_path,
    embedding_title,
    vector_backend,
)
from rag_engine.ingest.onnx_export import (
    MARKER_NAME,
    STALE_EXPORT_SECONDS,
    cpu_flags,
    ensure_export,
    export_folder,
    int8_config,
    onnx_file,
)
from rag_engine.ingest.store import index_settings
from tests.conftest import write
from tests.fakes import EchoGenerator, HashingEmbedder

SENTENCES = [
    "The zorblat lives in the valley of Quenth and eats blue moss.",
    "Agatha Plimm first described the zorblat in 1887.",
    "The Varnholm basalt columns formed 60 million years ago from cooling lava.",
    "How many spines does the quillfish have?",
    "Particulate matter below 2.5 micrometres reaches deep into the lungs.",
]
MODEL = "all-MiniLM-L6-v2"
VNNI = frozenset({"fpu", "avx2", "avx512f", "avx512bw", "avx512_vnni"})


def embedding(backend: str, export_dir: Path | None = None) -> EmbeddingConfig:
    return EmbeddingConfig(backend=backend, export_dir=str(export_dir) if export_dir else "")


def cosines(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return np.asarray((a * b).sum(axis=1), dtype=np.float32)


# -- the int8 kernels, the names ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("machine", "flags", "expected"),
    [
        ("aarch64", frozenset(), "arm64"),
        ("arm64", VNNI, "arm64"),
        ("x86_64", VNNI, "avx512_vnni"),
        ("x86_64", frozenset({"avx2", "avx512f", "avx512bw"}), "avx512"),
        ("x86_64", frozenset({"avx2", "avx512f"}), "avx2"),  # AVX-512 without byte/word ops: no avx512 kernels
        ("x86_64", frozenset({"avx2"}), "avx2"),
        ("x86_64", frozenset(), "avx2"),
    ],
)
def test_int8_kernels_follow_the_cpu(machine: str, flags: frozenset[str], expected: str) -> None:
    assert int8_config(machine, flags) == expected


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    info = write(tmp_path / "cpuinfo", "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512_vnni\n")
    assert cpu_flags(info) == frozenset({"fpu", "avx2", "avx512_vnni"})
    assert cpu_flags(tmp_path / "missing") == frozenset()
    assert cpu_flags(write(tmp_path / "arm", "processor\t: 0\nFeatures\t: fp asimd\n")) == frozenset()


def test_each_backend_names_its_vectors_and_the_trace() -> None:
    kernels = int8_config()
    assert vector_backend(embedding("torch")) == "torch"
    assert vector_backend(embedding("onnx")) == "onnx"
    assert vector_backend(embedding("onnx-int8")) == f"onnx-int8-{kernels}"
    assert embedding_title(embedding("torch")) == "all-MiniLM-L6-v2"
    assert embedding_title(embedding("onnx")) == "all-MiniLM-L6-v2 (onnx)"
    assert embedding_title(embedding("onnx-int8")) == f"all-MiniLM-L6-v2 (onnx-int8, {kernels})"
    assert onnx_file("onnx") == "onnx/model.onnx"
    assert onnx_file(f"onnx-int8-{kernels}") == f"onnx/model_{kernels}.onnx"


def test_the_stored_index_settings_name_the_backend(config: Config) -> None:
    settings = {
        backend: index_settings(dataclasses.replace(config, embedding=embedding(backend)))
        for backend in ("torch", "onnx", "onnx-int8")
    }
    assert [s["embedding_backend"] for s in settings.values()] == ["torch", "onnx", f"onnx-int8-{int8_config()}"]
    assert len({json.dumps(s, sort_keys=True) for s in settings.values()}) == 3


def test_export_folders_differ_by_variant_and_source(tmp_path: Path) -> None:
    source = bundled_model_path()
    variants = ("onnx", "onnx-int8-avx2", "onnx-int8-arm64")
    folders = {export_folder(tmp_path, MODEL, source, variant) for variant in variants}
    assert len(folders) == 3 and all(folder.parent.parent == tmp_path for folder in folders)
    assert export_folder(tmp_path, MODEL, source, "onnx") == export_folder(tmp_path, MODEL, source, "onnx")
    other = tmp_path / "other-model"
    write(other / "config.json", "{}")
    # Another model folder under the same name (a reinstall, an edited copy): another export.
    assert export_folder(tmp_path, MODEL, other, "onnx") != export_folder(tmp_path, MODEL, source, "onnx")


# -- settings -----------------------------------------------------------------------------------------------
def test_the_backend_settings_load_and_their_defaults(tmp_path: Path) -> None:
    default = load_config(write(tmp_path / "a.toml", "")).embedding
    assert (default.backend, default.export_dir) == (EmbeddingConfig().backend, "")
    loaded = load_config(write(tmp_path / "b.toml", '[embedding]\nbackend = "onnx"\nexport_dir = "exports"\n'))
    assert (loaded.embedding.backend, loaded.embedding.export_dir) == ("onnx", "exports")
    assert with_overrides(loaded, ["embedding.backend=onnx-int8"]).embedding.backend == "onnx-int8"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('backend = "tensorrt"', "embedding.backend must be one of torch, onnx, onnx-int8"),
        ('backend = "onnx-int8"\ndevice = "cuda"', "runs on the CPU"),
        ("batch_size = 0", "embedding.batch_size must be at least 1"),
        ("backend = 8", "embedding.backend must be str"),
    ],
)
def test_bad_backend_settings_are_refused(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path / "c.toml", f"[embedding]\n{table}\n"))


def test_a_torch_gpu_is_still_allowed(tmp_path: Path) -> None:
    table = '[embedding]\nbackend = "torch"\ndevice = "cuda"\n'
    assert load_config(write(tmp_path / "d.toml", table)).embedding.device == "cuda"


# -- a backend change rebuilds the domain (fakes) --------------------------------------------------------------
def test_another_backend_rebuilds_the_domain_and_reuses_none_of_its_vectors(config: Config) -> None:
    torch_config = dataclasses.replace(config, embedding=embedding("torch"))
    int8_config_ = dataclasses.replace(config, embedding=embedding("onnx-int8"))
    torch_embedder, int8_embedder = HashingEmbedder(), HashingEmbedder()
    Engine(torch_config, embedder=lambda: torch_embedder, generator=EchoGenerator).index("zoology")
    update = Engine(int8_config_, embedder=lambda: int8_embedder, generator=EchoGenerator).index("zoology")
    assert update.rebuilt and update.reused == 0 and update.embedded == update.passages > 0
    assert int8_embedder.texts_embedded == update.passages
    back = Engine(torch_config, embedder=lambda: HashingEmbedder(), generator=EchoGenerator).index("zoology")
    assert back.rebuilt and back.embedded == 0 and back.reused == back.passages  # torch's own vectors again


# -- leftovers ------------------------------------------------------------------------------------------------
def test_only_stale_temp_exports_are_deleted(tmp_path: Path) -> None:
    stale, young = tmp_path / ".onnx-abc.1.dead.tmp", tmp_path / ".onnx-abc.2.busy.tmp"
    write(stale / "onnx" / "model.onnx", b"half")
    write(young / "onnx" / "model.onnx", b"half")
    old = time.time() - STALE_EXPORT_SECONDS - 60
    os.utime(stale, (old, old))
    onnx_export._remove_stale_temps(tmp_path, time.time())
    assert not stale.exists() and young.exists()


def test_a_failed_export_leaves_nothing_that_could_be_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(folder: Path, source: Path, variant: str) -> None:
        write(folder / "onnx" / "model.onnx", b"half a graph")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(onnx_export, "_export_into", disk_full)
    with pytest.raises(ModelError, match="No space left on device"):
        ensure_export(tmp_path, MODEL, bundled_model_path(), "onnx")
    target = export_folder(tmp_path, MODEL, bundled_model_path(), "onnx")
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_a_missing_onnx_runtime_is_a_clear_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what `import onnxruntime` finds when not installed
    with pytest.raises(ModelError, match="needs onnxruntime and optimum-onnx"):
        SentenceTransformerEmbedder(embedding("onnx-int8"))


# -- the real thing -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def export_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-exports")


@pytest.fixture(scope="module")
def embedders(export_root: Path) -> dict[str, SentenceTransformerEmbedder]:
    backends = ("torch", "onnx", "onnx-int8")
    return {backend: SentenceTransformerEmbedder(embedding(backend, export_root)) for backend in backends}


@pytest.mark.real_models
def test_onnx_sessions_do_not_spin(embedders: dict[str, SentenceTransformerEmbedder]) -> None:
    """The index and sentence encoders share one process and 2 cores: an idle session's busy-waiting threads
    would slow the other 2-4x (benchmarks/bench_onnx_spinning.py)."""
    for backend in ("onnx", "onnx-int8"):
        session = embedders[backend].model[0].auto_model.model
        assert session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"


@pytest.mark.real_models
def test_each_backend_gives_unit_vectors_close_to_torch(embedders: dict[str, SentenceTransformerEmbedder]) -> None:
    torch = embedders["torch"].embed(SENTENCES)
    for backend, floor in (("onnx", 0.9999), ("onnx-int8", 0.99)):
        vectors = embedders[backend].embed(SENTENCES)
        assert vectors.shape == torch.shape == (len(SENTENCES), 384) and vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert cosines(vectors, torch).min() >= floor, backend
        assert embedders[backend].name == embedding_title(embedding(backend))
    # int8 is an approximation: close, but not the float32 vectors themselves.
    assert cosines(embedders["onnx-int8"].embed(SENTENCES), torch).min() < 0.99999


@pytest.mark.real_models
def test_an_export_is_reused_not_made_again(
    embedders: dict[str, SentenceTransformerEmbedder], export_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_export(*args: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_export, "_export_into", no_export)
    again = SentenceTransformerEmbedder(embedding("onnx-int8", export_root))
    np.testing.assert_allclose(again.embed(SENTENCES), embedders["onnx-int8"].embed(SENTENCES), atol=1e-6)
    variant = vector_backend(embedding("onnx-int8"))
    folder = export_folder(export_root, MODEL, bundled_model_path(), variant)
    assert (folder / MARKER_NAME).is_file() and (folder / onnx_file(variant)).is_file()
    assert not (folder / onnx_file("onnx")).exists()  # the float32 graph is not kept beside the int8 one
    assert not list(folder.parent.glob(".*.tmp"))


@pytest.mark.real_models
def test_a_leftover_temp_export_does_not_break_the_next_load(
    tmp_path: Path, embedders: dict[str, SentenceTransformerEmbedder]
) -> None:
    target = export_folder(tmp_path, MODEL, bundled_model_path(), "onnx")
    # What a process killed mid-export leaves: a hidden temp folder with a truncated graph and no marker.
    leftover = target.parent / f".{target.name}.4242.dead.tmp"
    write(leftover / "onnx" / "model.onnx", b"\x08\x07truncated")
    write(leftover / "modules.json", "[]")
    loaded = SentenceTransformerEmbedder(embedding("onnx", tmp_path))
    assert cosines(loaded.embed(SENTENCES), embedders["torch"].embed(SENTENCES)).min() >= 0.9999
    assert (target / MARKER_NAME).is_file() and leftover.exists()  # young: maybe another process's, left alone
    assert ensure_export(tmp_path, MODEL, bundled_model_path(), "onnx") == target


@pytest.mark.real_models
def test_an_int8_index_never_holds_torch_vectors(
    config: Config, export_root: Path, embedders: dict[str, SentenceTransformerEmbedder]
) -> None:
    def engine(backend: str) -> Engine:
        chosen = dataclasses.replace(config, embedding=embedding(backend, export_root))
        return Engine(chosen, embedder=lambda: embedders[backend], generator=EchoGenerator)

    assert engine("torch").index("zoology").rebuilt
    int8 = engine("onnx-int8")
    update = int8.index("zoology")
    assert update.rebuilt and update.reused == 0 and update.embedded == update.passages
    space = int8.snapshot("zoology").space
    ids = sorted(space.passages)
    stored = space.index.vectors(ids)
    texts = [space.passages[i].text for i in ids]
    np.testing.assert_allclose(stored, embedders["onnx-int8"].embed(texts), atol=1e-6)
    assert not np.allclose(stored, embedders["torch"].embed(texts), atol=1e-4)
    hit = int8.answer("What does the zorblat eat?", "zoology").hits[0]
    assert hit.passage.path == "zorblat.md"


# A child that loads the int8 embedder with `sys.argv[1]` as its export folder and embeds one sentence.
INT8_CHILD = (
    "import sys\n"
    "from rag_engine.config import EmbeddingConfig\n"
    "from rag_engine.ingest.embedding import SentenceTransformerEmbedder\n"
    "config = EmbeddingConfig(backend='onnx-int8', export_dir=sys.argv[1])\n"
    "print(SentenceTransformerEmbedder(config).embed(['one sentence']).shape)\n"
)


# ONNX Runtime keeps no telemetry when it sees one of these (it takes them for a CI machine), so the child runs
# without them: otherwise the opted-in case would find nothing on CI and prove nothing about a user's machine.
CI_MARKERS = frozenset(
    {
        "CI",
        "TF_BUILD",
        "GITHUB_ACTIONS",
        "GITLAB_CI",
        "CIRCLECI",
        "TRAVIS",
        "JENKINS_URL",
        "CODEBUILD_BUILD_ID",
        "BUILDKITE",
        "TEAMCITY_VERSION",
        "APPVEYOR",
        "BITBUCKET_BUILD_NUMBER",
    }
)


@pytest.mark.real_models
@pytest.mark.parametrize(("opt_out", "telemetry_kept"), [(None, False), ("0", True)])
def test_onnx_runtime_keeps_no_telemetry_unless_the_user_asks(
    tmp_path: Path,
    export_root: Path,
    embedders: dict[str, SentenceTransformerEmbedder],
    opt_out: str | None,
    telemetry_kept: bool,
) -> None:
    """ONNX Runtime (1.29+) writes a device id and an event database under ~/.cache/Microsoft and uploads them.
    ragscope turns that off before ONNX Runtime starts; a user who sets ORT_DISABLE_TELEMETRY=0 gets it back
    (which also shows the check below can see those files)."""
    home = tmp_path / "home"
    home.mkdir()
    dropped = CI_MARKERS | {"ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME"}
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env.update(HOME=str(home), HF_HUB_OFFLINE="1")
    if opt_out is not None:
        env["ORT_DISABLE_TELEMETRY"] = opt_out
    done = subprocess.run(
        [sys.executable, "-c", INT8_CHILD, str(export_root)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 384)"
    assert (home / ".cache" / "Microsoft").exists() == telemetry_kept
