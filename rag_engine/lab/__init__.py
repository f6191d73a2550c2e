"""The RAG lab: experiments run on the user's own question and documents, each a real run of the pipeline.

`EXPERIMENTS` names them as the surfaces do (`ragscope lab NAME`, `/lab NAME`); `run_experiment` checks the
question, runs one, and returns its `LabReport` (`report.py`). Each experiment lives in its own module, imported
only when it runs (the kNN-LM one loads transformers):

- `k`         dilution: the same question at k = 1, 2, 4, 8 (`dilution.py`)
- `mmr`       redundancy: plain kNN against MMR on a domain with near-duplicates (`redundancy.py`)
- `retriever` a deliberately weak embedder against the real one (`retriever.py`)
- `hops`      one retrieval round against two (`hops.py`)
- `knnlm`     a token-level kNN-LM against RAG and no retrieval (`knnlm.py`)

Nothing here renders for a surface: the CLI and the bot show a report's `lines()`, `explanation` and `png()`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from rag_engine.errors import QuestionError

if TYPE_CHECKING:
    from rag_engine.engine import Engine
    from rag_engine.lab.report import LabReport

# name -> (module, function, one line for help texts). A function takes (engine, query, lab settings).
EXPERIMENTS: dict[str, tuple[str, str, str]] = {
    "k": ("rag_engine.lab.dilution", "run_dilution", "context dilution: the same question at k = 1, 2, 4, 8"),
    "mmr": ("rag_engine.lab.redundancy", "run_redundancy", "redundant passages: plain kNN against MMR"),
    "retriever": ("rag_engine.lab.retriever", "run_retriever", "a bad retriever: a weak embedder against the real one"),
    "hops": ("rag_engine.lab.hops", "run_hops", "multi-hop: one retrieval round against two"),
    "knnlm": ("rag_engine.lab.knnlm", "run_knnlm", "kNN-LM: next-token retrieval against RAG and no retrieval"),
}


def run_experiment(engine: Engine, name: str, question: str, domain: str | None) -> LabReport:
    """Run experiment `name` on `question` in `domain` (checked as `Engine.check` does; the lab needs one
    domain: None means the config's first). `QuestionError` for an unknown experiment."""
    if name not in EXPERIMENTS:
        raise QuestionError(f"unknown lab experiment {name!r} (known: {', '.join(EXPERIMENTS)})")
    chosen = domain or next(iter(engine.domains()), None)
    if chosen is None:
        raise QuestionError("the lab needs a domain, and the knowledge folder has none")
    query = engine.check(question, chosen)
    module, function, _ = EXPERIMENTS[name]
    run = getattr(importlib.import_module(module), function)
    report: LabReport = run(engine, query, engine.config.lab)
    return report
