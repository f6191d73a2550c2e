"""Attention: which prompt tokens the generator looked at while it wrote each answer token.

llama.cpp (which generates the answers) does not expose attention weights, so the same GGUF file is read a
second time with Hugging Face transformers (de-quantised to float32, eager attention) and the finished
prompt + answer is run through it once. The weights of all heads of the last few layers are averaged into one
[answer tokens x prompt tokens] matrix. Nothing here generates or retrieves: the prompt and the answer come
from an `Answer` trace that already exists. The engine makes one `AttentionModel` on first use
(`Engine.explain`); drawing the matrix lives in `attention_map.py`.

Tokens are the Hugging Face tokenizer's tokens of the same text. For the bundled SmolLM2 GGUF they are exactly
the tokens llama.cpp counted for the prompt (no BOS is added, the chat markers are single special tokens); for
another GGUF the two tokenizers may differ slightly at special tokens. The answer is re-tokenised from its text,
so a model that generated a non-canonical split of a word shows the canonical split here.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from rag_engine.config import GenerationConfig
from rag_engine.errors import AttentionUnavailable, RagError
from rag_engine.explain.view import attention_dict

DEFAULT_LAST_LAYERS = 4
QUESTION_LABEL = "question"
# Exception messages from the GGUF reader can be long (tensor lists); the user needs the first sentence.
_REASON_CHARS = 300


@dataclass(frozen=True)
class AttentionMap:
    """How much each generated token attended to each prompt token.

    `weights[i, j]` is the attention, averaged over every head of the layers in `layers`, from the forward step
    that produced answer token `i` (its query is the token just before it: the prompt's last token for the first
    answer token) to prompt token `j`. Only the prompt's columns are kept: a later answer token also attends to
    the answer tokens before it, so each row is restricted to the prompt and renormalised to sum to 1.

    `prompt_tokens` and `answer_tokens` are consecutive slices of the two texts: joined they give the prompt and
    the answer back exactly (a byte-level token that holds only part of a character is an empty string, its
    neighbour holds the character). `spans` are labelled column ranges [start, end) of the prompt: "[1]", "[2]",
    ... for the context passages in the order given, and "question"; a text that is not in the prompt has none.
    """

    prompt_tokens: tuple[str, ...]
    answer_tokens: tuple[str, ...]
    weights: npt.NDArray[np.float32]
    layers: tuple[int, ...]
    heads: int
    spans: tuple[tuple[str, int, int], ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, the weights rounded to 6 decimals (as in the pipeline view's JSON)."""
        return attention_dict(self)


class _Loaded(NamedTuple):
    tokenizer: Any
    model: Any


class _Tokens(NamedTuple):
    ids: list[int]
    texts: tuple[str, ...]
    # Character offset where each token's text starts (non-decreasing; the first is 0).
    starts: list[int]


class AttentionModel:
    """The generation GGUF read by transformers, for attention (and, through `borrowed`, the lab's kNN-LM
    hidden states). Nothing is loaded until the first use (about 15 s for the bundled model); after that the
    model is kept. One user at a time."""

    def __init__(self, config: GenerationConfig) -> None:
        self._generation = config
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None
        # A model that could not be read is not read again on every question.
        self._failure: AttentionUnavailable | None = None

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def load(self) -> None:
        """Load now rather than on the first `attend` (e.g. in the background at start-up)."""
        with self._lock:
            self._load()

    @contextlib.contextmanager
    def borrowed(self) -> Iterator[tuple[Any, Any]]:
        """`with model.borrowed() as (tokenizer, model):` the transformers tokenizer and model (loaded on first
        use, `AttentionUnavailable` if they cannot be), held under the same lock as `attend` for the whole block:
        the lab's kNN-LM runs its own forward passes on the copy the pipeline view already keeps in memory.
        The model is in eval mode; a borrower must not change its weights or settings."""
        with self._lock:
            loaded = self._load()
            yield loaded.tokenizer, loaded.model

    def attend(
        self,
        prompt: str,
        answer: str,
        contexts: Sequence[str] = (),
        question: str = "",
        last_layers: int = DEFAULT_LAST_LAYERS,
    ) -> AttentionMap:
        """The attention of each token of `answer` over the tokens of `prompt` (the exact prompt the answer was
        generated from), averaged over all heads of the last `last_layers` layers (fewer if the model has fewer).
        `contexts` (the passage texts, in prompt order) and `question` only label column spans."""
        if last_layers < 1:
            raise ValueError("last_layers must be at least 1")
        if not prompt:
            raise AttentionUnavailable("there is no prompt: nothing was generated for this answer")
        with self._lock:
            loaded = self._load()
            prompt_tokens = _tokenize(loaded.tokenizer, prompt, special=True)
            # The answer is tokenised on its own: generation started a fresh token after the prompt's last one.
            answer_tokens = _tokenize(loaded.tokenizer, answer, special=False)
            layer_count = int(loaded.model.config.num_hidden_layers)
            layers = tuple(range(max(0, layer_count - last_layers), layer_count))
            heads = int(loaded.model.config.num_attention_heads)
            limit = int(getattr(loaded.model.config, "max_position_embeddings", 0) or 0)
            length = len(prompt_tokens.ids) + len(answer_tokens.ids)
            if limit and length > limit:
                raise AttentionUnavailable(f"prompt and answer are {length} tokens; the model reads at most {limit}")
            weights = _prompt_attention(loaded.model, prompt_tokens.ids, answer_tokens.ids, layers)
        return AttentionMap(
            prompt_tokens=prompt_tokens.texts,
            answer_tokens=answer_tokens.texts,
            weights=weights,
            layers=layers,
            heads=heads,
            spans=_spans(prompt, prompt_tokens.starts, contexts, question),
        )

    def _load(self) -> _Loaded:
        """The tokenizer and model, loaded on first use (called under the lock)."""
        if self._loaded is not None:
            return self._loaded
        if self._failure is not None:
            raise self._failure
        try:
            from rag_engine.generate.generation import model_cache_dir

            self._loaded = _read_model(self._gguf_path(), model_cache_dir(self._generation) / "attention")
        except AttentionUnavailable as exc:
            self._failure = exc
            raise
        return self._loaded

    def _gguf_path(self) -> Path:
        from rag_engine.generate.generation import gguf_path

        try:
            return gguf_path(self._generation)
        except RagError as exc:
            raise AttentionUnavailable(str(exc)) from exc


def _converted_folder(path: Path, cache: Path) -> Path:
    """Where the de-quantised copy of `path` is kept: named by the GGUF's name, size and mtime, so a changed
    file is converted again, and by the transformers version that converted it (another version may not read
    it, or tokenize it the same way)."""
    from transformers import __version__ as transformers_version

    stat = path.stat()
    return cache / f"{path.stem}-{stat.st_size}-{stat.st_mtime_ns}-tf{transformers_version}"


def _adds_bos(path: Path) -> bool | None:
    """The GGUF's own rule for a leading BOS token (`tokenizer.ggml.add_bos_token`), which llama.cpp follows
    and transformers' GGUF reader does not always (4.57 gives SmolLM2 a BOS); None when the file does not say.
    Reading the header first also turns "not a GGUF file" into the same reason whatever the transformers."""
    import gguf

    try:
        field = gguf.GGUFReader(str(path)).fields.get("tokenizer.ggml.add_bos_token")
    except Exception as exc:  # the reader raises ValueError, struct or numpy errors on a foreign file
        raise AttentionUnavailable(f"transformers cannot read {path.name} for attention: not a GGUF file") from exc
    return None if field is None else bool(field.parts[field.data[0]][0])


def _read_model(path: Path, cache: Path | None = None) -> _Loaded:
    """The tokenizer and model of `path` for transformers. De-quantising a GGUF is slow (about a minute for a
    0.5B model on 2 cores), so the result is saved once under `cache` (safetensors) and read from there after."""
    if not path.is_file():
        raise AttentionUnavailable(f"GGUF model file not found: {path}")
    # The model is on disk: it must never reach for the Hugging Face hub (no network at run time).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gguf  # noqa: F401  (transformers needs it to read GGUF; a clear message if it is missing)
        import torch  # noqa: F401
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as transformers_logging
    except ImportError as exc:
        raise AttentionUnavailable(f"attention needs torch, transformers and gguf: {exc}") from exc

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    folder, name = str(path.parent), path.name
    adds_bos = _adds_bos(path)
    converted = _converted_folder(path, cache) if cache is not None else None
    if converted is not None and (converted / "config.json").is_file():
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(converted))  # type: ignore[no-untyped-call]
            model = AutoModelForCausalLM.from_pretrained(str(converted), attn_implementation="eager")
            return _checked(tokenizer, model, name, adds_bos)
        except (OSError, ValueError):
            pass  # a damaged copy: convert again from the GGUF
    try:
        with _no_dequantize_progress_bar():
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)  # type: ignore[no-untyped-call]
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, attn_implementation="eager")
    # transformers' GGUF reader fails in many ways (not a GGUF, an architecture or quantisation it does not
    # know, a missing tensor); every one of them means "no attention for this model".
    except Exception as exc:
        raise AttentionUnavailable(f"transformers cannot read {name} for attention: {_reason(exc)}") from exc
    loaded = _checked(tokenizer, model, name, adds_bos)
    if converted is not None:
        _save_converted(tokenizer, model, converted)
    return loaded


def _checked(tokenizer: Any, model: Any, name: str, adds_bos: bool | None) -> _Loaded:
    if not getattr(tokenizer, "is_fast", False):
        raise AttentionUnavailable(f"{name}: transformers gives no fast tokenizer, so tokens cannot be placed")
    if adds_bos is not None and hasattr(tokenizer, "add_bos_token"):
        tokenizer.add_bos_token = adds_bos  # the prompt's tokens must be the ones llama.cpp counted
    model.eval()
    if not _attention_modules(model):
        raise AttentionUnavailable(f"{name}: the model's layers are not laid out as expected (no self_attn)")
    return _Loaded(tokenizer, model)


def _save_converted(tokenizer: Any, model: Any, folder: Path) -> None:
    """Save the de-quantised model beside a temporary name, then rename it into place (never half-written).
    A failure to save (a full disk) only costs the next start another conversion."""
    import shutil

    temporary = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    try:
        shutil.rmtree(temporary, ignore_errors=True)
        # The weights are plain float32 once de-quantised; transformers still marks the model as "quantised
        # with gguf" and refuses to save it, so the marks go first.
        model.hf_quantizer = None
        if getattr(model.config, "quantization_config", None) is not None:
            del model.config.quantization_config
        model.save_pretrained(str(temporary), safe_serialization=True)
        tokenizer.save_pretrained(str(temporary))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(temporary, folder)
    except (OSError, ValueError, AttributeError):
        shutil.rmtree(temporary, ignore_errors=True)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"


@contextlib.contextmanager
def _no_dequantize_progress_bar() -> Iterator[None]:
    """transformers draws its "Converting and de-quantizing GGUF tensors" bar with plain tqdm, which its
    `disable_progress_bar()` does not reach; swap in a disabled tqdm for the length of the load."""
    gguf_utils: Any
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        gguf_utils = None
    original = getattr(gguf_utils, "tqdm", None)
    if original is None:  # another transformers version: at worst the bar is drawn
        yield
        return
    gguf_utils.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = original


def _attention_modules(model: Any) -> list[Any]:
    """The self-attention module of each decoder layer, first layer first (Llama, Mistral, Qwen2, ... layout)."""
    layers = getattr(getattr(model, "base_model", None), "layers", None)
    if layers is None:
        return []
    modules = [getattr(layer, "self_attn", None) for layer in layers]
    return modules if all(module is not None for module in modules) else []


def _tokenize(tokenizer: Any, text: str, special: bool) -> _Tokens:
    """Token ids and their texts as consecutive slices of `text`, from the tokenizer's offset mapping.

    Byte-level BPE gives overlapping offsets to the tokens of one multi-byte character; each token's start is
    pushed to at least the previous one, so the slices never overlap and always cover the whole text."""
    if not text:
        return _Tokens([], (), [])
    encoding = tokenizer(text, add_special_tokens=special, return_offsets_mapping=True)
    ids = [int(token_id) for token_id in encoding["input_ids"]]
    starts: list[int] = []
    previous = 0
    for start, _end in encoding["offset_mapping"]:
        previous = max(previous, min(int(start), len(text)))
        starts.append(previous)
    if starts:
        starts[0] = 0
    ends = [*starts[1:], len(text)]
    return _Tokens(ids, tuple(text[a:b] for a, b in zip(starts, ends, strict=True)), starts)


def _prompt_attention(
    model: Any, prompt_ids: Sequence[int], answer_ids: Sequence[int], layers: Sequence[int]
) -> npt.NDArray[np.float32]:
    """One forward pass; the head-averaged attention of the chosen layers, answer rows x prompt columns."""
    n_prompt, n_answer = len(prompt_ids), len(answer_ids)
    if n_answer == 0:
        return np.zeros((0, n_prompt), dtype=np.float32)
    import torch

    # Answer token i was produced by the step whose query is position n_prompt - 1 + i, so the last answer
    # token is never a query and is left out of the pass.
    ids = torch.tensor([[*prompt_ids, *answer_ids[:-1]]], dtype=torch.long)
    first_row = n_prompt - 1
    modules = _attention_modules(model)
    collected: dict[int, torch.Tensor] = {}

    def keep(index: int) -> Any:
        def hook(_module: Any, _args: Any, output: Any) -> None:
            weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
            if weights is not None:
                # [batch, heads, query, key] → the answer rows over the prompt columns, mean of the heads. Only
                # these slices are kept: all layers' full matrices would take gigabytes for a 2k-token prompt.
                collected[index] = weights[0, :, first_row:, :n_prompt].float().mean(dim=0)

        return hook

    # Hooks on the chosen layers rather than output_attentions=True, which holds every layer's full matrix.
    handles = [modules[index].register_forward_hook(keep(index)) for index in layers]
    try:
        with torch.no_grad():
            # The base model only: the vocabulary logits are not needed.
            model.base_model(input_ids=ids, use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    if len(collected) != len(layers):
        raise AttentionUnavailable("the model returned no attention weights (it needs eager attention)")
    averaged = torch.stack([collected[index] for index in layers]).mean(dim=0).numpy().astype(np.float64)
    totals = averaged.sum(axis=1, keepdims=True)
    return np.ascontiguousarray(averaged / np.where(totals > 0, totals, 1.0), dtype=np.float32)


def _spans(
    prompt: str, starts: Sequence[int], contexts: Sequence[str], question: str
) -> tuple[tuple[str, int, int], ...]:
    """Label the prompt's token columns that hold each context passage and the question."""
    found: list[tuple[str, int, int]] = []
    cursor = 0
    for number, context in enumerate(contexts, start=1):
        if not context:
            continue
        # Passages appear in order; search onwards from the previous one, then anywhere.
        position = prompt.find(context, cursor)
        if position < 0:
            position = prompt.find(context)
        if position < 0:
            continue
        found.append((f"[{number}]", position, position + len(context)))
        cursor = position + len(context)
    if question:
        # The question can also occur inside a passage: take its last occurrence outside every passage.
        candidates = []
        position = prompt.find(question)
        while position >= 0:
            candidates.append(position)
            position = prompt.find(question, position + 1)
        outside = [p for p in candidates if all(p + len(question) <= start or p >= end for _, start, end in found)]
        if outside or candidates:
            position = (outside or candidates)[-1]
            found.append((QUESTION_LABEL, position, position + len(question)))
    return tuple((label, *_token_range(starts, start, end)) for label, start, end in found)


def _token_range(starts: Sequence[int], char_start: int, char_end: int) -> tuple[int, int]:
    """The tokens [first, last + 1) whose text overlaps the characters [char_start, char_end)."""
    first = max(0, bisect.bisect_right(starts, char_start) - 1)
    return first, bisect.bisect_left(starts, char_end)
