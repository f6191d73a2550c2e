"""Evaluation of retrieval and answers against questions with known sources or answers: measurement only.

- `metrics.py`: nDCG@k, recall@k and MRR@k as trec_eval computes them (graded relevance).
- `beir.py`: a BEIR-format folder run through the engine's own embedding and search path (`ragscope eval
  retrieval`).
- `qa.py`: answer quality on a SQuAD-format file, with and without RAG (`ragscope eval qa`).
- `domains.py`: retrieval over the shipped domains' question files (`ragscope eval domains`, the bot's `/eval`).
- `answers.py`: the answers to those questions, right or wrong and why (`ragscope eval answers`, `/eval what:
  answers`).

Each takes plain parameters and an optional `Progress` callback and returns its report; nothing here parses
options, prints or draws a bar (that is `ragscope/eval_*.py`, and `bot/cogs/eval.py` for Discord). Nothing is
imported here, so loading one evaluation never loads the others.
"""
