"""Explain: the pipeline view of one finished `Answer` — the five steps as records (`view.py`), built from the
answer (`build.py`), written as files (`files.py`), with the model's attention over the prompt (`attention.py`)
and the pictures (`figures.py`: the embedding map and the attention map, labels placed without overlap).

Nothing here answers questions; the engine does, and `Engine.explain(answer)` returns the view.
"""
