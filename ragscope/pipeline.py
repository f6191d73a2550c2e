"""`ragscope pipeline QUESTION --out DIR`: answer one question and write every step of its pipeline view.

The engine builds the view (`Engine.explain`); this command only writes it and sums it up on the terminal.
The files (pipeline.json, embedding_map.png, distances.md, prompt.txt, answer.ansi, attention.png or
attention.txt) are described in `rag_engine.explain.files.write_pipeline`. Attention needs a second, eager
copy of the language model (transformers reading the same GGUF); `--no-attention` skips it, and a model that
cannot give attention leaves attention.txt saying why instead of failing the command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from rag_engine.engine import Engine
from rag_engine.explain.files import write_pipeline
from rag_engine.safe_names import display_name


def run_pipeline(args: argparse.Namespace, engine: Engine, prepare: Callable[[Engine, str | None], None]) -> int:
    # Refuse bad input before any model is loaded or index built.
    query = engine.check(args.question, args.domain, args.k)
    use_rag = not args.no_rag
    if use_rag:
        engine.load_embedder_in_background()  # while the indexes are read (as `ragscope ask` does)
        prepare(engine, args.domain)
    answer = engine.answer(query, use_rag=use_rag)
    view = engine.explain(answer, attention=not args.no_attention)
    written = write_pipeline(view, Path(args.out))
    print(answer.text)
    print()
    if not view.used_rag:
        print("No retrieval (--no-rag): steps 1–3 are empty.")
    elif view.retrieval is not None:
        retrieval = view.retrieval
        print(f"Step 3, {retrieval.title}: {retrieval.ranking}")
        if retrieval.rows:
            nearest = retrieval.rows[0]
            print(
                f"{retrieval.searched} passages searched; nearest {nearest.domain}/{display_name(nearest.path)} "
                f"{nearest.span} at {nearest.distance:.3f} (threshold {retrieval.max_distance:.2f})"
            )
    if view.generation.attention is None:
        print(view.generation.attention_note)
    print(f"wrote {len(written)} files to {args.out}: {', '.join(path.name for path in written)}")
    return 0
