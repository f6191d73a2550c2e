"""Which generator `[generation] backend` names: llama.cpp in this process (the default) or OpenAI-compatible
servers. Only the choice is here; each backend lives in its own module, and a server's client is imported
only when that backend is chosen."""

from __future__ import annotations

from rag_engine.config import GenerationConfig
from rag_engine.generate.generation import Generator, LlamaGenerator


def make_generator(config: GenerationConfig, warm_system: str = "") -> Generator:
    """The generator `config` names. In process, `warm_system` (the RAG system prompt) is evaluated right after
    the model loads, so the first question pays only for its own tokens; a server keeps its own cache."""
    if config.backend == "openai":
        from rag_engine.generate.openai_server import OpenAIServerGenerator

        return OpenAIServerGenerator(config)
    generator = LlamaGenerator(config)
    if warm_system:
        generator.warm(warm_system)
    return generator
