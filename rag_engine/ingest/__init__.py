"""Ingest: from files to an index that queries can use.

Loading (`loading.py`), chunking into passages (`chunking.py`), embedding them (`embedding.py`, with a cache keyed
by text in `embed_cache.py`), applying only what changed (`incremental.py`), the knowledge store of domain
snapshots (`knowledge.py`) with its folder boundary (`folder.py`), crash-safe files (`storage.py`) and the folder
watcher (`watcher.py`). Searching the result is `search/`; nothing here builds prompts or generates.
"""
