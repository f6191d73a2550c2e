"""Explain: the pipeline view of one finished `Answer`, the five steps a surface shows.

- `view.py`      the records: `PipelineView` and its step records; `AttentionLike` / `AttentionSource`
- `build.py`     building a view from an answer's trace and the current snapshots (`build_view`); step 3
                 says what ranked the passages in the answer's retrieval mode (`ranking`)
- `files.py`     writing a view as files: pipeline.json, the pictures, distances.md, prompt.txt (`write_pipeline`)
- `attention.py` the attention model: transformers reading the generator's GGUF, one forward pass per answer
- `figures.py`   the pictures as PNG bytes (`embedding_map_png`, `attention_png`), one module per picture:
                 `embedding_map.py`, `attention_map.py`; the canvas they share `canvas.py`, label placement
                 without overlap `labels.py`

Nothing here answers questions or imports the engine: `Engine.explain(answer)` returns the view, handing over
its config, its snapshots and its attention model (made on first use); the CLI and the bot only render it.
"""
