"""Search: the vector index seam and FAISS (`index.py`), BM25 (`lexical.py`), fusing both (`fusion.py`), and
k-nearest-neighbour retrieval with MMR over one or all domains (`retrieval.py`).

Imports only the shared records, config and errors: a new retrieval mode never needs the ingest or generation code.
"""
