"""`ragscope pipeline QUESTION --out DIR`: answer one question and write every step of its pipeline view.

The files (pipeline.json, embedding_map.png, distances.md, prompt.txt, answer.ansi, attention.png or
attention.txt) are described in `rag_engine.explain.view.write_pipeline`. Attention needs a second, eager copy of
the language model (transformers reading the same GGUF); `--no-attention` skips it, and a model that cannot
give attention leaves attention.txt saying why instead of failing the command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.explain.view import AttentionSource, build_pipeline, write_pipeline
from rag_engine.safe_names import display_name


def load_attention(config: Config) -> tuple[AttentionSource | None, str]:
    """The attention model for the configured generator (loaded on first use), or None and why not."""
    try:
        from rag_engine.explain.attention import AttentionModel
    except ImportError as exc:  # the module, or a package it needs, is missing
        return None, f"attention unavailable: {exc}"
    return AttentionModel(config.generation), ""


def run_pipeline(args: argparse.Namespace, engine: Engine, prepare: Callable[[Engine, str | None], None]) -> int:
    # Refuse bad input before any model is loaded or index built.
    query = engine.check(args.question, args.domain, args.k)
    use_rag = not args.no_rag
    if use_rag:
        prepare(engine, args.domain)
    answer = engine.answer(query, use_rag=use_rag)
    if args.no_attention:
        attention, note = None, "attention was not computed (--no-attention)"
    else:
        attention, note = load_attention(engine.config)
    view = build_pipeline(engine, answer, attention, attention_note=note)
    written = write_pipeline(view, Path(args.out))
    print(answer.text)
    print()
    if not view.used_rag:
        print("No retrieval (--no-rag): steps 1–3 are empty.")
    elif view.retrieval is not None and view.retrieval.rows:
        nearest = view.retrieval.rows[0]
        print(
            f"{view.retrieval.searched} passages searched; nearest {nearest.domain}/{display_name(nearest.path)} "
            f"{nearest.span} at {nearest.distance:.3f} (threshold {view.retrieval.max_distance:.2f})"
        )
    if view.generation.attention is None:
        print(view.generation.attention_note)
    print(f"wrote {len(written)} files to {args.out}: {', '.join(path.name for path in written)}")
    return 0
