"""A domain that crosses `[index] approximate_above_passages`, through the real `Engine` and `KnowledgeBase` (real
FAISS, real files, the hashing fake embedder, a threshold of a few dozen passages): its index becomes approximate
(IVF), is stored and loaded as one by a restarted engine (and so are the updates stored after it), answers with the
same top hits and distances as an exact index of the same folder, and becomes exact again once the domain falls
below half the threshold (not before: hysteresis)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from rag_engine.config import Config
from rag_engine.engine import Engine
from tests.conftest import write
from tests.fakes import EchoGenerator, HashingEmbedder

DOMAIN = "atlas"
THRESHOLD = 60
SYLLABLES = ["ka", "lo", "mir", "ven", "tas", "quo", "ril", "dun", "pex", "sar", "bel", "tho", "gru", "nim"]


def word(number: int) -> str:
    """A made-up word per number (its digits in base 14, a syllable each), so every file has words of its own."""
    letters = []
    number += len(SYLLABLES)
    while number:
        number, digit = divmod(number, len(SYLLABLES))
        letters.append(SYLLABLES[digit])
    return "".join(letters)


def paragraph(file_number: int, part: int) -> str:
    """About 600 characters: one passage each at the default 800-character chunks."""
    own = f"{word(file_number * 10 + part)} {word(5000 + file_number)}"
    return " ".join(f"The {own} record {n} tells of the {own} of the northern valley." for n in range(7))


def add_files(root: Path, numbers: range) -> None:
    for number in numbers:
        text = "\n\n".join(paragraph(number, part) for part in range(3)) + "\n"
        write(root / DOMAIN / f"region-{number:03d}.md", text)


def engine_over(config: Config, data_dir: Path, threshold: int) -> Engine:
    index = dataclasses.replace(config.index, approximate_above_passages=threshold)
    changed = dataclasses.replace(config.with_paths(data_dir=data_dir), index=index)
    model = HashingEmbedder()
    return Engine(changed, embedder=lambda: model, generator=EchoGenerator)


def kind(engine: Engine) -> str:
    return str(getattr(engine.snapshot(DOMAIN).space.index, "kind", "?"))


def top_hits(engine: Engine, numbers: range) -> list[list[tuple[int, float]]]:
    questions = [f"{word(n * 10 + 1)} {word(5000 + n)}?" for n in numbers]  # a file's own words
    return [[(h.passage.id, round(h.distance, 5)) for h in engine.retrieve(q, DOMAIN, 5)] for q in questions]


def test_a_domain_crossing_the_threshold_goes_approximate_survives_a_restart_and_comes_back(
    config: Config, tmp_path: Path
) -> None:
    root = config.paths.knowledge_dir
    add_files(root, range(15))
    engine = engine_over(config, tmp_path / "data", THRESHOLD)
    assert engine.index(DOMAIN).passages == 45 and kind(engine) == "exact"

    add_files(root, range(15, 27))
    update = engine.index(DOMAIN)
    assert update.passages == 81 and update.embedded == 36 and kind(engine) == "ivf"
    index = engine.snapshot(DOMAIN).space.index
    assert len(index) == 81 and getattr(index, "lists", 0) > 1
    # The same answers as exact search over the same folder: the same passages, at the same true distances.
    exact = engine_over(config, tmp_path / "exact-data", 10**9)
    exact.index(DOMAIN)
    assert kind(exact) == "exact"
    expected = top_hits(exact, range(27))
    assert top_hits(engine, range(27)) == expected

    # Stored as approximate: a restarted engine loads it as is and embeds nothing.
    restarted = engine_over(config, tmp_path / "data", THRESHOLD)
    assert kind(restarted) == "ivf" and top_hits(restarted, range(27)) == expected
    # An update of an approximate domain is stored too (the files keep the index's kind).
    add_files(root, range(27, 28))
    assert restarted.index(DOMAIN).passages == 84 and kind(restarted) == "ivf"
    again = engine_over(config, tmp_path / "data", THRESHOLD)
    assert kind(again) == "ivf" and again.domain_stats(DOMAIN).passages == 84
    assert top_hits(again, range(27, 28))[0][0][0] in again.snapshot(DOMAIN).records["region-027.md"].passage_ids

    # Below the threshold but above half of it: still approximate; below half: exact again, and stored so.
    for number in range(14):
        (root / DOMAIN / f"region-{number:03d}.md").unlink()
    assert again.index(DOMAIN).passages == 42 and kind(again) == "ivf"
    for number in range(14, 19):
        (root / DOMAIN / f"region-{number:03d}.md").unlink()
    assert again.index(DOMAIN).passages == 27 and kind(again) == "exact"
    final = engine_over(config, tmp_path / "data", THRESHOLD)
    assert kind(final) == "exact" and final.domain_stats(DOMAIN).passages == 27
    exact.index(DOMAIN)
    assert top_hits(final, range(19, 28)) == top_hits(exact, range(19, 28))


def test_the_approximate_index_holds_exactly_the_passages_vectors(config: Config, tmp_path: Path) -> None:
    """After the switch every passage's stored vector is the one its text embeds to (nothing lost or mixed up
    when the vectors moved from the exact index into the lists)."""
    add_files(config.paths.knowledge_dir, range(25))
    engine = engine_over(config, tmp_path / "data", THRESHOLD)
    engine.index(DOMAIN)
    snapshot = engine.snapshot(DOMAIN)
    assert kind(engine) == "ivf" and len(snapshot.space.index) == len(snapshot.space.passages) == 75
    ids = sorted(snapshot.space.passages)
    texts = [snapshot.space.passages[i].text for i in ids]
    np.testing.assert_allclose(snapshot.space.index.vectors(ids), HashingEmbedder().embed(texts), atol=1e-6)
