"""ragscope's RAG engine: load → chunk → embed → index → search → prompt → generate, synchronous, no Discord.

The facade is `Engine`; everything it returns is a small frozen record from `records`.
"""

from __future__ import annotations

from rag_engine.config import Config, load_config
from rag_engine.engine import Engine
from rag_engine.errors import RagError
from rag_engine.records import Answer, DomainStats, Hit, Passage

__all__ = ["Answer", "Config", "DomainStats", "Engine", "Hit", "Passage", "RagError", "load_config"]
