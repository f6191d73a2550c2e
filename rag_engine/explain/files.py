"""Writing the pipeline view as files: pipeline.json (the whole view), embedding_map.png and distances.md (with
retrieval), prompt.txt (when a prompt was built), answer.ansi, and attention.png or attention.txt saying why
there is none. What `ragscope pipeline --out DIR` leaves in DIR. The pictures are drawn by `figures.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

from rag_engine.errors import PipelineOutputError
from rag_engine.explain import figures
from rag_engine.explain.view import PipelineView, RetrievalStep

PIPELINE_FILES = frozenset(
    {
        "pipeline.json",
        "embedding_map.png",
        "distances.md",
        "prompt.txt",
        "answer.ansi",
        "attention.png",
        "attention.txt",
    }
)


def distances_markdown(retrieval: RetrievalStep) -> str:
    """The distance table as Markdown (GitHub and Discord both render the header line as bold text)."""
    shown = "every passage" if retrieval.complete else f"the {len(retrieval.rows)} nearest"
    lines = [
        f"# Distances from the question ({shown} of {retrieval.searched})",
        "",
        f"{retrieval.ranking} Euclidean distance between the question's vector and each passage's; lower is "
        f"closer. k = {retrieval.top_k}, threshold {retrieval.max_distance:.2f}.",
        "",
        "| rank | distance | file | span | retrieved | in prompt |",
        "|---:|---:|---|---|---|---|",
    ]
    for row in retrieval.rows:
        retrieved = f"hit {row.hit_rank}" if row.hit_rank is not None else ""
        if row.hit_rank is not None and row.distance > retrieval.max_distance:
            retrieved += " (too far)"
        where = f"{row.domain}/{row.path}".replace("|", "\\|")
        used = "yes" if row.in_prompt else ""
        lines.append(f"| {row.rank} | {row.distance:.4f} | {where} | {row.span} | {retrieved} | {used} |")
    if retrieval.note:
        lines += ["", retrieval.note]
    return "\n".join(lines) + "\n"


def write_pipeline(view: PipelineView, out: Path) -> list[Path]:
    """Write the view's files into `out` (created if needed); returns the paths written, in order.

    pipeline.json always; embedding_map.png and distances.md with retrieval; prompt.txt when a prompt was
    built; answer.ansi always; attention.png, or attention.txt saying why there is none.
    """
    files: list[tuple[str, bytes]] = [
        ("pipeline.json", json.dumps(view.to_dict(), ensure_ascii=False, indent=2).encode("utf-8"))
    ]
    if view.query is not None and view.retrieval is not None:
        files.append(("embedding_map.png", figures.embedding_map_png(view)))
        files.append(("distances.md", distances_markdown(view.retrieval).encode("utf-8")))
    if view.prompt is not None:
        files.append(("prompt.txt", view.prompt.text.encode("utf-8")))
    files.append(("answer.ansi", (view.generation.ansi + "\n").encode("utf-8")))
    if view.generation.attention is not None:
        files.append(("attention.png", figures.attention_png(view.generation.attention)))
    else:
        files.append(("attention.txt", (view.generation.attention_note + "\n").encode("utf-8")))
    written = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in files:
            path = out / name
            path.write_bytes(data)
            written.append(path)
        # A file of an earlier run into the same folder that this view has no data for would mislead.
        for name in sorted(PIPELINE_FILES - {name for name, _ in files}):
            (out / name).unlink(missing_ok=True)
    except OSError as exc:
        raise PipelineOutputError(f"could not write the pipeline files to {out}: {exc.strerror or exc}") from exc
    return written
