"""Helpers of the pgvector tests: configs on the test server (one schema per test), the two-passage "ledger"
file whose passages must always agree, and the child processes (`python -m tests.rag_engine.ingest.pg <role>`):

- `reader`: a read-only engine with no knowledge folder that reads the ledger as fast as it can until it sees
  the last edit, and prints what it saw as one JSON line (after a first line "ready");
- `indexer`: a writing engine that indexes one domain once (the test kills it mid-update).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from rag_engine.config import Config, IndexConfig
from rag_engine.engine import Engine
from tests.fakes import EchoGenerator, HashingEmbedder

DSN_ENV = IndexConfig().dsn_env
LEDGER = "ledger.md"
LEDGER_QUESTION = "Which ledger entry number do the alpha and omega ledgers hold?"
_NUMBER = re.compile(r"entry number (\d+)")
READER_SECONDS = 60.0


def pgvector_config(config: Config, schema: str, read_only: bool = False) -> Config:
    return dataclasses.replace(config, index=IndexConfig(backend="pgvector", schema=schema, read_only=read_only))


def reader_config(config: Config, schema: str, folder: Path) -> Config:
    """A read-only answer process's config: no knowledge folder (the path does not exist), data of its own."""
    ro = pgvector_config(config, schema, read_only=True)
    return ro.with_paths(knowledge_dir=folder / "no-knowledge-here", data_dir=folder / "reader-data")


def ledger_text(number: int) -> str:
    """Two paragraphs of ~600 characters (one passage each, with 800-character chunks) naming the same number."""
    return (
        "\n\n".join(
            " ".join(
                f"The {side} ledger records entry number {number} for the Quenth valley, line {n}." for n in range(8)
            )
            for side in ("alpha", "omega")
        )
        + "\n"
    )


def ledger_number(text: str) -> int:
    found = {int(n) for n in _NUMBER.findall(text)}
    assert len(found) == 1, text
    return found.pop()


def child_command(role: str, config: Config, domain: str, *extra: str) -> list[str]:
    settings = {
        "knowledge": str(config.paths.knowledge_dir),
        "data": str(config.paths.data_dir),
        "schema": config.index.schema,
        "read_only": config.index.read_only,
    }
    return [sys.executable, "-m", "tests.rag_engine.ingest.pg", role, json.dumps(settings), domain, *extra]


def _config(raw: dict[str, Any]) -> Config:
    base = Config().with_paths(knowledge_dir=Path(raw["knowledge"]), data_dir=Path(raw["data"]))
    config = dataclasses.replace(base, retrieval=dataclasses.replace(base.retrieval, mode="dense"))
    return pgvector_config(config, raw["schema"], raw["read_only"])


def read_ledger(engine: Engine, domain: str, last: int) -> dict[str, Any]:
    """Read snapshots and search results until the ledger shows `last`; every one must be whole: a snapshot's
    two passages name one number and its file record names exactly them, and a search finds both passages of
    one snapshot (the engine searches again when the indexer replaced its snapshot meanwhile)."""
    seen: list[int] = []
    bad: list[str] = []
    reads = 0
    deadline = time.monotonic() + READER_SECONDS
    while time.monotonic() < deadline:
        snapshot = engine.snapshot(domain)
        reads += 1
        numbers = sorted(ledger_number(p.text) for p in snapshot.space.passages.values())
        if len(numbers) != 2 or numbers[0] != numbers[1]:
            bad.append(f"v{snapshot.stats.version}: passages name {numbers}")
        if set(snapshot.records[LEDGER].passage_ids) != set(snapshot.space.passages):
            bad.append(f"v{snapshot.stats.version}: the file record and the passages differ")
        hits = engine.retrieve(LEDGER_QUESTION, domain, 2)
        hit_numbers = sorted(ledger_number(hit.passage.text) for hit in hits)
        if len(hit_numbers) != 2 or hit_numbers[0] != hit_numbers[1]:
            bad.append(f"a search returned passages naming {hit_numbers}")
        if not seen or seen[-1] != numbers[0]:
            seen.append(numbers[0])
            if len(seen) == 1:
                print("ready", flush=True)
        if numbers[0] == last:
            break
    return {"seen": seen, "bad": bad, "reads": reads}


def main(argv: list[str]) -> int:
    role, raw, domain = argv[0], json.loads(argv[1]), argv[2]
    embedder = HashingEmbedder()
    engine = Engine(_config(raw), embedder=lambda: embedder, generator=EchoGenerator)
    if role == "reader":
        print(json.dumps(read_ledger(engine, domain, int(argv[3]))), flush=True)
    elif role == "indexer":
        print(json.dumps(engine.index(domain).to_dict()), flush=True)
    else:
        raise SystemExit(f"unknown role {role!r}")
    return 0


if __name__ == "__main__":  # run with the repository as the working folder
    raise SystemExit(main(sys.argv[1:]))
