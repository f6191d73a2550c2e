"""Fixtures of the live-knowledge tests: the repository's config, the real models (loaded once per session and
shared by every in-process `Engine` of those tests), a copy of the shipped history domain with its index built
once, and a watcher over a fresh copy of it. Only the tests that ask for them load anything.
"""

from __future__ import annotations

import dataclasses
import queue
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag_engine.config import Config, load_config
from rag_engine.records import IndexUpdate
from tests.conftest import SHIPPED_KNOWLEDGE
from tests.rag_engine.ingest.live import CONFIG_PATH, Live, SharedModels, copy_history, live_config


@pytest.fixture(scope="session")
def repo_config() -> Config:
    """The repository's config, ranking by embeddings alone (these tests check nearest-first order)."""
    config = load_config(CONFIG_PATH)
    return dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, mode="dense"))


@pytest.fixture(scope="session")
def models(repo_config: Config) -> SharedModels:
    return SharedModels(repo_config)


@pytest.fixture(scope="session")
def history_template(tmp_path_factory: pytest.TempPathFactory, repo_config: Config, models: SharedModels) -> Path:
    """A copy of the shipped history domain and its stored index (and embedding cache), built once."""
    base = tmp_path_factory.mktemp("history")
    shutil.copytree(SHIPPED_KNOWLEDGE / "history", base / "knowledge" / "history")
    update = models.engine(live_config(repo_config, base / "knowledge", base / "data")).index("history")
    assert update.rebuilt and update.added == 10
    return base


@pytest.fixture
def live_history(tmp_path: Path, history_template: Path, repo_config: Config, models: SharedModels) -> Iterator[Live]:
    """A watcher over a copy of the history domain whose stored index is current: the initial sync loads it
    and reports nothing."""
    root = copy_history(history_template, tmp_path)
    engine = models.engine(live_config(repo_config, root, tmp_path / "data"))
    updates: queue.Queue[IndexUpdate] = queue.Queue()
    errors: queue.Queue[tuple[str, Exception]] = queue.Queue()
    with engine.watch(updates.put, on_error=lambda domain, exc: errors.put((domain, exc))):
        initial: list[IndexUpdate] = []
        while not updates.empty():  # the initial sync reports from start(), before it returns
            initial.append(updates.get_nowait())
        assert initial == []
        yield Live(engine, root, updates, errors, initial)
