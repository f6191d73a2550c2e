"""Evaluation of retrieval and answers against questions with known sources or answers.

- `metrics.py`: nDCG@k, recall@k and MRR@k as trec_eval computes them (graded relevance).
- `beir.py`: a BEIR-format folder run through the engine's own embedding and search path (`ragscope eval
  retrieval`).
- `qa.py`: answer quality on a SQuAD-format file, with and without RAG (`ragscope eval qa`).
- `domains.py`: the shipped domains' question files (`ragscope eval domains`, the bot's `/eval`).

The terminal commands are put together in `ragscope/eval_commands.py`; nothing is imported here, so loading one
evaluation never loads the others.
"""
