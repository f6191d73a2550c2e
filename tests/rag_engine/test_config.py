"""Config: defaults, the shipped config.toml, relative paths, and clear errors for bad settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_engine.config import Config, load_config
from rag_engine.errors import ConfigError
from tests.conftest import REPO, write


def test_shipped_config_matches_the_defaults_except_paths() -> None:
    shipped = load_config(REPO / "config.toml")
    defaults = Config()
    for section in ("loading", "chunking", "embedding", "retrieval", "prompt", "generation"):
        assert getattr(shipped, section) == getattr(defaults, section), section
    assert shipped.paths.knowledge_dir == REPO / "knowledge"
    assert shipped.paths.data_dir == REPO / ".ragscope-data"


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = write(tmp_path / "conf" / "c.toml", '[paths]\nknowledge_dir = "../kb"\n[retrieval]\ntop_k = 7\n')
    config = load_config(path)
    assert config.paths.knowledge_dir.resolve() == (tmp_path / "kb").resolve()
    assert config.retrieval.top_k == 7
    assert config.retrieval.max_distance == Config().retrieval.max_distance


def test_integers_are_accepted_for_float_settings(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "c.toml", "[retrieval]\nmax_distance = 1\n"))
    assert config.retrieval.max_distance == 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[retrieval]\ntop_k = 'four'\n", "retrieval.top_k must be int"),
        ("[retrieval]\ntopk = 4\n", "unknown setting retrieval.topk"),
        ("[retrieveal]\n", "unknown section"),
        ("[retrieval]\nmmr_lambda = 1.5\n", "mmr_lambda must be between 0 and 1"),
        ("[chunking]\nchunk_overlap_chars = 900\n", "chunk_overlap_chars"),
        ("[prompt]\ntemplate = 'no placeholders'\n", "{context}"),
        ("[generation]\nmax_answer_tokens = 4096\n", "max_answer_tokens must be below"),
        ("this is = not toml =", "not valid TOML"),
    ],
)
def test_bad_settings_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        load_config(write(tmp_path / "c.toml", text))


def test_a_surfaces_table_is_accepted_and_kept_for_it_unread(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "c.toml", "[bot]\ncooldown_burst = 0\nanything = 'goes'\n"))
    assert config.surface_tables == {"bot": {"cooldown_burst": 0, "anything": "goes"}}
    assert Config().surface_tables == {} and load_config(write(tmp_path / "d.toml", "")).surface_tables == {}
    with pytest.raises(ConfigError, match=r"unknown section\(s\) in .*: botz"):
        load_config(write(tmp_path / "e.toml", "[bot]\n[botz]\n"))


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_set_overrides_one_setting_checked_like_the_file() -> None:
    from rag_engine.config import with_overrides

    config = with_overrides(Config(), ["evidence.sentences=false", "generation.model=smollm2", "retrieval.top_k=2"])
    assert config.evidence.sentences is False and config.generation.model == "smollm2"
    assert config.retrieval.top_k == 2 and config.retrieval.mode == Config().retrieval.mode
    with pytest.raises(ConfigError, match=r"unknown setting evidence\.bogus"):
        with_overrides(Config(), ["evidence.bogus=1"])
    with pytest.raises(ConfigError, match="must be int"):
        with_overrides(Config(), ["evidence.max_sentences=true"])
    with pytest.raises(ConfigError, match=r"SECTION\.KEY=VALUE"):
        with_overrides(Config(), ["paths.data_dir=/tmp"])
    with pytest.raises(ConfigError, match="top_k must be at least 1"):
        with_overrides(Config(), ["retrieval.top_k=0"])
