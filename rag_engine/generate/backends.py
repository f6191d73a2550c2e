"""Which generator `[generation] backend` names: llama.cpp in this process (the default) or OpenAI-compatible
servers. Only the choice is here; each backend lives in its own module, and a server's client is imported
only when that backend is chosen."""

from __future__ import annotations

from rag_engine.config import GenerationConfig
from rag_engine.generate.generation import Generator, LlamaGenerator


def make_generator(config: GenerationConfig) -> Generator:
    if config.backend == "openai":
        from rag_engine.generate.openai_server import OpenAIServerGenerator

        return OpenAIServerGenerator(config)
    return LlamaGenerator(config)
