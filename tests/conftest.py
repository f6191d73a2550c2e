"""Shared fixtures: configs pointing at temporary folders, fake-model engines, and the real-model engine.

The real models are loaded once per test session (they are small, but loading still costs seconds).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rag_engine.config import Config, load_config
from rag_engine.engine import Engine
from rag_engine.ingest.knowledge import KnowledgeBase
from tests.fakes import EchoGenerator, HashingEmbedder

# The test servers' fixtures, for every test (see tests/servers.py).
from tests.servers_llama import llama_server, llama_servers  # noqa: F401
from tests.servers_pg import pg_schema, postgres_server  # noqa: F401
from tests.servers_redis import redis_server  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
SHIPPED_KNOWLEDGE = REPO / "knowledge"

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def run_eval_command(
    register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], object], argv: list[str], engine: Engine
) -> int:
    """`ragscope eval <argv>` as the parent command runs it, with only the subcommand `register` adds: parse,
    then call the parser's `eval_handler` (so a test of one subcommand does not depend on the others)."""
    parser = argparse.ArgumentParser(prog="ragscope eval")
    register(parser.add_subparsers(dest="eval_command", required=True))
    args = parser.parse_args(argv)
    result: int = args.eval_handler(args, engine)
    return result


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def knowledge_dir(tmp_path: Path) -> Path:
    """A small two-domain knowledge folder with made-up facts no model knows."""
    root = tmp_path / "knowledge"
    write(
        root / "zoology" / "zorblat.md",
        "# The zorblat\n\nThe zorblat lives in the valley of Quenth and eats blue moss.\n\n"
        "Agatha Plimm first described the zorblat in 1887. An adult weighs about 14 kilograms.\n",
    )
    write(
        root / "zoology" / "quillfish.txt",
        "The quillfish swims in the cold lakes of Varnholm.\nIt has forty-two spines.\n",
    )
    write(
        root / "geology" / "basalt.md",
        "# Varnholm basalt\n\nThe Varnholm basalt columns formed 60 million years ago from cooling lava.\n",
    )
    return root


@pytest.fixture
def config(tmp_path: Path, knowledge_dir: Path) -> Config:
    """The defaults over the small folder, ranking by embeddings alone (the fake-model tests describe kNN;
    hybrid and BM25 have tests of their own)."""
    base = Config()
    return dataclasses.replace(
        base.with_paths(knowledge_dir=knowledge_dir, data_dir=tmp_path / "data"),
        retrieval=dataclasses.replace(base.retrieval, max_distance=1.3, mode="dense"),
    )


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def generator() -> EchoGenerator:
    return EchoGenerator()


@pytest.fixture
def knowledge_base(config: Config, embedder: HashingEmbedder) -> KnowledgeBase:
    """The store under `fake_engine`, for tests that watch or disturb its syncs and folder listings."""
    return KnowledgeBase(config, lambda: embedder)


@pytest.fixture
def fake_engine(
    config: Config, embedder: HashingEmbedder, generator: EchoGenerator, knowledge_base: KnowledgeBase
) -> Engine:
    return Engine(config, embedder=lambda: embedder, generator=lambda: generator, knowledge=knowledge_base)


@pytest.fixture(scope="session")
def shipped_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The repository's config.toml, with the indexes written to a temporary folder."""
    config = load_config(REPO / "config.toml")
    return config.with_paths(data_dir=tmp_path_factory.mktemp("shipped-data"))


@pytest.fixture(scope="session")
def real_engine(shipped_config: Config) -> Iterator[Engine]:
    """The real models over the shipped knowledge, shared by the whole session."""
    yield Engine(shipped_config)
