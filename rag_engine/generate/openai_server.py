"""Generation on OpenAI-compatible servers (`[generation] backend = "openai"`), behind the `Generator` seam.

The prompt is the one the in-process backend would get: the prompt builder formats the chat with the model's own
template (read from the local GGUF's metadata; vocabulary only, no weights are loaded) and that exact text goes
to the raw completions endpoint (`POST /v1/completions`, streamed), not as chat messages the server would lay
out itself. At temperature 0 an answer then equals the in-process one for the same prompt (the tests check it
on llama-cpp-python's server). Servers with raw completions: vLLM, llama.cpp's `llama-server`, llama-cpp-python's
`python -m llama_cpp.server`, Ollama (`/v1/completions`) and LM Studio. The repetition penalty is off, as in
process (`repeat_penalty` 1.0: llama.cpp's servers and Ollama default to 1.1; servers without it ignore it).

Prompt budgets count tokens with the server's tokenize endpoint when it has one (llama-cpp-python's
`POST /extras/tokenize`, llama.cpp's `POST /tokenize`; the body also carries vLLM's field names for its
`/tokenize`, untested here), else with the local GGUF's tokenizer; the trace says which
(`Answer.models["tokenizer"]`) and names the server that answered (`models["server"]`).

A text API parses chat markers ("<|im_end|>") wherever they are, so a document or a question holding one could
end the user's turn: each marker found in a message is broken by an invisible WORD JOINER (U+2060) before the
template is applied. The template's own markers stay special tokens.

The pool (`base_urls`): answers start at successive members. A member that fails (refused, an HTTP error, no
reply within the timeout) before the answer's first token reached the user is left for the next one, and
tried after the others for a while; each member is tried once per answer, and when none answers
`ModelServerError` names each with its reason. A failure after the first token raises `ModelServerError` too:
an answer is never restarted on another server (the user would read its start twice).

Not here: the copy bias. It is a logits processor of the in-process backend and a server cannot run it, so
answers equal the in-process ones only with `copy_bias = 0` (a warning says so when it is set). The API key
comes from the environment variable `api_key_env` names, and is never logged or shown.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import openai

from rag_engine.config import GenerationConfig
from rag_engine.errors import ModelError, ModelServerError
from rag_engine.generate.generation import chat_formatter, format_messages, gguf_path, quiet_stderr

log = logging.getLogger(__name__)

# A member that failed is tried after the others for this long (a dead server costs no answer a wait).
_DOWN_SECONDS = 30.0
# Inserted after a chat marker's first character, it keeps any tokenizer from reading the marker as one.
_JOINER = "\u2060"
# The server's sampling switches that must match the in-process backend's.
_SAMPLING = {"repeat_penalty": 1.0}
# The tokenize endpoints known, each at the server's root: (path, the fields holding the text: llama.cpp's
# `content`, vLLM's `prompt`). Markers are parsed as special tokens, no BOS asked for (one added is discounted).
_TOKENIZE_ENDPOINTS = (("/extras/tokenize", ("input",)), ("/tokenize", ("content", "prompt")))
_NO_BOS = {"add_special": False, "add_special_tokens": False, "parse_special": True}
# The HTTP statuses that mean "no such endpoint here" (or not in this form), rather than a failing server.
_ABSENT = {400, 404, 405, 422, 501}


def shown_url(url: str) -> str:
    """`url` without a user:password part, for logs, errors and the trace."""
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}"


class _Server:
    """One pool member: its OpenAI client (no retries of its own: the pool retries) and its root, where the
    tokenize endpoints are (beside /v1)."""

    def __init__(self, url: str, api_key: str, config: GenerationConfig) -> None:
        self.url = url.rstrip("/")
        self.shown = shown_url(self.url)
        self.root = self.url.removesuffix("/v1")
        timeout = openai.Timeout(config.read_timeout_seconds, connect=config.connect_timeout_seconds)
        # A server without a key takes any; the client insists on one, so a placeholder stands in.
        self.client = openai.OpenAI(base_url=self.url, api_key=api_key or "no-key", timeout=timeout, max_retries=0)
        self.failed_at: float | None = None

    def down(self, now: float) -> bool:
        return self.failed_at is not None and now - self.failed_at < _DOWN_SECONDS

    def tokenize(self, path: str, fields: Sequence[str], text: str, model: str) -> list[int]:
        body: dict[str, object] = {"model": model, **_NO_BOS}
        body.update(dict.fromkeys(fields, text))
        reply = self.client.post(self.root + path, cast_to=object, body=body)
        tokens = reply.get("tokens") if isinstance(reply, dict) else None
        if not isinstance(tokens, list):
            raise ModelServerError(f"{shown_url(self.root)}{path} did not answer with tokens")
        return tokens


class OpenAIServerGenerator:
    """An OpenAI-compatible server (or a pool of them) behind the `Generator` seam; any number of answers at
    once (each request is the server's to schedule)."""

    def __init__(self, config: GenerationConfig, environ: Mapping[str, str] | None = None) -> None:
        self._vocab = _load_vocabulary(config)
        self._formatter = chat_formatter(self._vocab)
        self._model = config.server_model
        self._temperature = config.temperature
        self._seed = config.seed
        self.name = config.server_model
        self.context_tokens = config.max_context_tokens
        self._key = _api_key(config, os.environ if environ is None else environ)
        self._servers = [_Server(url, self._key, config) for url in config.base_urls]
        self._turn = itertools.count()
        self._lock = threading.Lock()
        # How tokens are counted, chosen on first use: (trace name, counter).
        self._counter: tuple[str, Callable[[str], int]] | None = None
        self._last = threading.local()  # the server that answered this thread's last stream
        if config.copy_bias > 0:
            log.warning(
                "generation.copy_bias = %s is not applied by a model server (in process only)", config.copy_bias
            )

    # -- the Generator seam ------------------------------------------------------------------------------
    def format_chat(self, system: str, user: str) -> str:
        return format_messages(self._formatter, self._defuse(system), self._defuse(user))

    def count_tokens(self, text: str) -> int:
        return self._tokenizer()[1](text)

    def stream(self, prompt: str, max_tokens: int, context: str = "") -> Iterator[str]:
        """Stream the answer to `prompt` from the first pool member that answers (`context` feeds only the
        in-process copy bias)."""
        failures: list[str] = []
        for server in self._members(rotate=True):
            started = False
            try:
                with server.client.completions.create(
                    model=self._model,
                    prompt=prompt,
                    max_tokens=max_tokens,
                    temperature=self._temperature,
                    seed=self._seed,
                    stream=True,
                    extra_body=_SAMPLING,
                ) as chunks:
                    for chunk in chunks:
                        text = chunk.choices[0].text if chunk.choices else ""
                        if text:
                            started = True
                            yield text
            except openai.OpenAIError as exc:
                reason = self._reason(exc)
                server.failed_at = time.monotonic()
                if started:
                    raise ModelServerError(
                        f"the model server {server.shown} failed in the middle of the answer ({reason}); "
                        "the answer stops there"
                    ) from exc
                log.warning("model server %s failed before the first token (%s)", server.shown, reason)
                failures.append(f"{server.shown}: {reason}")
                continue
            server.failed_at = None
            self._last.server = server.shown
            return
        raise ModelServerError(f"no model server answered ({'; '.join(failures)})")

    def trace(self) -> dict[str, str]:
        """The tokenizer counting the prompt budget, and the server that answered this thread's last stream."""
        trace = {"tokenizer": self._counter[0]} if self._counter else {}
        server = getattr(self._last, "server", None)
        return trace | ({"server": server} if server else {})

    # -- the pool ----------------------------------------------------------------------------------------
    def _members(self, rotate: bool) -> list[_Server]:
        """The pool in the order to try: from the next member in turn (`rotate`) or from the first, the ones
        that failed lately last."""
        start = next(self._turn) % len(self._servers) if rotate else 0
        ring = self._servers[start:] + self._servers[:start]
        now = time.monotonic()
        return sorted(ring, key=lambda server: server.down(now))

    def _reason(self, exc: openai.OpenAIError) -> str:
        """Why a request failed, in a few words, with the key (should a server echo it) blanked out."""
        if isinstance(exc, openai.APITimeoutError):
            reason = "no reply in time"
        elif isinstance(exc, openai.APIStatusError):
            reason = f"HTTP {exc.status_code}"
        elif isinstance(exc, openai.APIConnectionError) and exc.__cause__ is not None:
            reason = f"{type(exc.__cause__).__name__}: {exc.__cause__}"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        return reason.replace(self._key, "***") if self._key else reason

    def _on_pool(self, call: Callable[[_Server], int]) -> int:
        """`call` on the first member that answers (in order, failed ones last), else `ModelServerError`."""
        failures = []
        for server in self._members(rotate=False):
            try:
                result = call(server)
            except openai.OpenAIError as exc:
                server.failed_at = time.monotonic()
                failures.append(f"{server.shown}: {self._reason(exc)}")
                continue
            server.failed_at = None
            return result
        raise ModelServerError(f"no model server answered ({'; '.join(failures)})")

    # -- tokens ------------------------------------------------------------------------------------------
    def _tokenizer(self) -> tuple[str, Callable[[str], int]]:
        with self._lock:
            if self._counter is None:
                self._counter = self._choose_tokenizer()
            return self._counter

    def _choose_tokenizer(self) -> tuple[str, Callable[[str], int]]:
        """The first tokenize endpoint the servers have, else the local GGUF's tokenizer. A server's count
        leaves out the BOS token it may add, as the in-process count does (the empty text shows how many)."""

        def probe(server: _Server) -> int:
            for index, (path, fields) in enumerate(_TOKENIZE_ENDPOINTS):
                try:
                    server.tokenize(path, fields, "", self._model)
                except openai.APIStatusError as exc:
                    if exc.status_code in _ABSENT:
                        continue
                    raise
                return index
            return -1

        index = self._on_pool(probe)
        if index < 0:
            return (f"local GGUF {Path(self._vocab.model_path).name}", self._count_locally)
        path, fields = _TOKENIZE_ENDPOINTS[index]
        bos = self._on_pool(lambda server: len(server.tokenize(path, fields, "", self._model)))

        def count(text: str) -> int:
            return self._on_pool(lambda server: len(server.tokenize(path, fields, text, self._model))) - bos

        return (f"server {path}", count)

    def _count_locally(self, text: str) -> int:
        """What a server parses `text` into (chat markers as special tokens), without the BOS."""
        return len(self._vocab.tokenize(text.encode("utf-8", errors="replace"), add_bos=False, special=True))

    def _defuse(self, text: str) -> str:
        """`text` with each chat marker in it (a special token's text) broken by a WORD JOINER, so that no
        tokenizer reads it as the token; a text without one is returned as it is."""
        encoded = text.encode("utf-8", errors="replace")
        parsed: Sequence[int] = self._vocab.tokenize(encoded, add_bos=False, special=True)
        if parsed == self._vocab.tokenize(encoded, add_bos=False, special=False):
            return text
        markers = {
            self._vocab.detokenize([token], special=True).decode("utf-8", errors="ignore")
            for token in parsed
            if not self._vocab.detokenize([token], special=False)
        }
        for marker in sorted(markers - {""}, key=len, reverse=True):
            text = text.replace(marker, marker[0] + _JOINER + marker[1:])
        return text


def _load_vocabulary(config: GenerationConfig) -> Any:
    """The local GGUF's vocabulary and metadata (chat template), without its weights."""
    path = gguf_path(config)
    if not path.is_file():
        raise ModelError(f"GGUF model file not found: {path} (the openai backend reads its chat template)")
    from llama_cpp import Llama

    try:
        with quiet_stderr():
            return Llama(model_path=str(path), vocab_only=True, n_ctx=16, verbose=False)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelError(f"cannot read GGUF model {path.name}: {exc}") from exc


def _api_key(config: GenerationConfig, environ: Mapping[str, str]) -> str:
    """The API key from the environment variable `api_key_env` names; "" when none is named."""
    if not config.api_key_env:
        return ""
    key = environ.get(config.api_key_env, "")
    if not key:
        raise ModelServerError(f"the environment variable {config.api_key_env} (generation.api_key_env) is not set")
    return key
