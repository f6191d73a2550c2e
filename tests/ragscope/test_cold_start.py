"""A cold `ragscope` process imports only what its command needs, and a generator that cannot load (now in the
background) still ends `ragscope ask` with the one-line error it always gave. Each test runs the console script
in a new Python process, as a user does; the modules it imported are read from that process at its exit."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag_engine.config import load_config
from rag_engine.engine import Engine
from rag_engine.errors import ModelError
from rag_engine.generate.generation import LlamaGenerator
from rag_engine.ingest.embedding import SentenceTransformerEmbedder
from tests.conftest import REPO, write
from tests.fakes import EchoGenerator, HashingEmbedder

# Runs the console script and, at exit (also after argparse's SystemExit), writes the imported modules' names.
RUN_AND_LIST_MODULES = (
    "import atexit, json, os, sys\n"
    "def listed():\n"
    "    with open(os.environ['MODULES_FILE'], 'w') as out:\n"
    "        json.dump(sorted(sys.modules), out)\n"
    "atexit.register(listed)\n"
    "from ragscope.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
MODELS = {"torch", "llama_cpp", "sentence_transformers", "transformers", "onnxruntime"}
# What `ask` never needs: the pipeline view's pictures and attention model, the bot, the folder watcher.
NOT_FOR_ASK = {"matplotlib", "discord", "bot", "watchdog", "gguf", "transformers.models.qwen2"}


def ragscope(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`ragscope ARGS` in a new process; its result and the top-level packages (and the modules) it imported."""
    modules_file = tmp_path / "modules.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MODULES_FILE": str(modules_file)}
    result = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST_MODULES, *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    names = set(json.loads(modules_file.read_text(encoding="utf-8")))
    return result, names | {name.split(".")[0] for name in names}


@pytest.fixture
def empty_config(tmp_path: Path) -> Path:
    """A config file with every default, so that this process and the child read the very same settings."""
    return write(tmp_path / "config.toml", "")


def folders(config_file: Path, knowledge: Path, data: Path) -> list[str]:
    return ["--config", str(config_file), "--knowledge", str(knowledge), "--data-dir", str(data)]


def test_domains_and_ask_help_import_no_model_library(knowledge_dir: Path, tmp_path: Path, empty_config: Path) -> None:
    data = tmp_path / "data"
    # Indexed here first (small fake models), so the child finds every domain up to date and embeds nothing.
    config = load_config(empty_config).with_paths(knowledge_dir=knowledge_dir, data_dir=data)
    Engine(config, embedder=HashingEmbedder, generator=EchoGenerator).sync_all()

    domains, imported = ragscope(tmp_path, "domains", *folders(empty_config, knowledge_dir, data))
    assert domains.returncode == 0, domains.stderr
    assert "zoology: 2 files" in domains.stdout
    assert not imported & MODELS, sorted(imported & MODELS)

    help_text, imported = ragscope(tmp_path, "ask", "--help")
    assert help_text.returncode == 0 and "--no-rag" in help_text.stdout
    assert not imported & MODELS, sorted(imported & MODELS)
    assert "faiss" not in imported  # not even the index library: nothing is searched


def test_a_generator_that_cannot_load_ends_ask_with_the_same_one_line_error(
    knowledge_dir: Path, tmp_path: Path, empty_config: Path
) -> None:
    broken = write(tmp_path / "notes.gguf", b"GGUF but not really a model" * 100)
    generation = dataclasses.replace(load_config(empty_config).generation, model_path=str(broken))
    with pytest.raises(ModelError) as direct:  # what loading it in the foreground says
        LlamaGenerator(generation)
    args = ["ask", "anything at all", "--no-rag", *folders(empty_config, knowledge_dir, tmp_path / "data")]
    result, imported = ragscope(tmp_path, *args, "--set", f"generation.model_path={broken}")
    assert result.returncode == 2
    assert result.stderr == f"ragscope: error: {direct.value}\n"
    assert "llama_cpp" in imported and not imported & {"torch", "sentence_transformers"}


def test_an_embedder_that_cannot_load_ends_ask_with_the_same_one_line_error(
    knowledge_dir: Path, tmp_path: Path, empty_config: Path
) -> None:
    """The embedder starts loading in the background before the indexes are read; the folder needs indexing,
    so its failure surfaces there, worded as a load in the foreground words it."""
    missing = tmp_path / "no-such-model"
    embedding = dataclasses.replace(load_config(empty_config).embedding, model=str(missing))
    with pytest.raises(ModelError) as direct:
        SentenceTransformerEmbedder(embedding)
    args = ["ask", "Who described the zorblat?", *folders(empty_config, knowledge_dir, tmp_path / "data")]
    result, imported = ragscope(tmp_path, *args, "--set", f"embedding.model={missing}")
    assert result.returncode == 2
    assert result.stderr == f"ragscope: error: {direct.value}\n"
    assert "llama_cpp" not in imported  # the generator is started by the answer, which never came


@pytest.mark.real_models
def test_ask_imports_the_models_and_nothing_it_does_not_use(knowledge_dir: Path, tmp_path: Path) -> None:
    """The default config (the real models), a cold process: the answer streams after the header, and neither
    the pipeline view's libraries, the bot nor the watcher were imported."""
    args = ["ask", "Who described the zorblat in 1887?", "--knowledge", str(knowledge_dir)]
    result, imported = ragscope(tmp_path, *args, "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 0, result.stderr
    header, answer = result.stdout.split("\n", 1)
    assert header.startswith("[RAG over all domains") and "Plimm" in answer
    assert {"torch", "llama_cpp", "sentence_transformers", "faiss"} <= imported
    assert not imported & NOT_FOR_ASK, sorted(imported & NOT_FOR_ASK)
