"""kNN-LM generation: at every step p = λ·p_kNN + (1−λ)·p_LM, the greedy token of the mix, and its trace.

p_LM is the model's softmax over the vocabulary. p_kNN comes from the datastore (`knnlm_store.py`): the
`neighbours` entries whose keys are nearest (exact search, squared L2 distance d) to the model's current final
hidden state each get weight exp(−d/T), the weights are normalised, and each neighbour's weight goes to its value
token, so p_kNN is non-zero only at the tokens that followed the neighbours in the domain's text. The model runs
with its KV cache (one token per step after the prompt); generation stops at an end-of-turn token or after
`max_tokens`. Nothing here builds prompts or reports: `knnlm.py` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rag_engine.lab.knnlm_store import Datastore

# The neighbours of a step kept in its trace (all of them drive p_kNN; the JSON and the picture show these).
TRACE_NEIGHBOURS = 8


@dataclass(frozen=True)
class Neighbour:
    """One datastore entry found for a step: where its token sits and what followed it."""

    file: str
    passage_id: int
    position: int
    # Squared L2 distance between its key and the step's hidden state (what IndexFlatL2 returns).
    distance: float
    token: str
    value: str
    value_id: int
    # Its normalised weight exp(−d/T) / Σ: its share of p_kNN.
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "passage_id": self.passage_id,
            "position": self.position,
            "distance": round(self.distance, 3),
            "token": self.token,
            "value": self.value,
            "value_id": self.value_id,
            "weight": round(self.weight, 6),
        }


@dataclass(frozen=True)
class KnnStep:
    """One generated token: the chosen token's p_LM, p_kNN and mixed p, the token the model alone would have
    chosen, p_kNN as (token id, text, probability) over its non-zero tokens, and the nearest neighbours."""

    token_id: int
    text: str
    p_lm: float
    p_knn: float
    p: float
    lm_token: str
    lm_token_id: int
    knn_probs: tuple[tuple[int, str, float], ...]
    neighbours: tuple[Neighbour, ...]
    # Files of all the step's neighbours, with how many came from each.
    file_counts: tuple[tuple[str, int], ...]

    @property
    def changed(self) -> bool:
        """True when the datastore changed the choice: the model alone would have picked another token."""
        return self.lm_token_id != self.token_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.text,
            "token_id": self.token_id,
            "p_lm": round(self.p_lm, 6),
            "p_knn": round(self.p_knn, 6),
            "p": round(self.p, 6),
            "lm_token": self.lm_token,
            "changed": self.changed,
            "p_knn_tokens": [{"token_id": i, "token": t, "p": round(p, 6)} for i, t, p in self.knn_probs],
            "neighbour_files": dict(self.file_counts),
            "neighbours": [n.to_dict() for n in self.neighbours],
        }


@dataclass(frozen=True)
class KnnDistribution:
    """p_kNN over the whole vocabulary for one hidden state, and the neighbours behind it, nearest first: their
    datastore rows, squared L2 distances and normalised weights exp(−d/T) / Σ."""

    probabilities: npt.NDArray[np.float64]
    rows: npt.NDArray[np.int64]
    distances: npt.NDArray[np.float32]
    weights: npt.NDArray[np.float64]


def knn_distribution(
    store: Datastore, index: Any, hidden: npt.NDArray[np.float32], neighbours: int, temperature: float, vocab: int
) -> KnnDistribution:
    """p_kNN over a vocabulary of `vocab` tokens: a softmax of −d/T over the `neighbours` nearest entries of
    `index` (the store's `search_index()`), summed per value token."""
    distances, rows = index.search(np.ascontiguousarray(hidden.reshape(1, -1), dtype=np.float32), neighbours)
    found = rows[0] >= 0  # fewer entries than neighbours: FAISS pads with -1
    distances, rows = distances[0][found], rows[0][found].astype(np.int64)
    # Shifted by the nearest distance: the same softmax, without exp underflowing to 0 everywhere.
    weights = np.exp(-(distances.astype(np.float64) - float(distances.min())) / temperature)
    weights /= weights.sum()
    probabilities = np.zeros(vocab, dtype=np.float64)
    np.add.at(probabilities, store.values[rows], weights)
    return KnnDistribution(probabilities, rows, distances, weights)


def generate(
    tokenizer: Any,
    model: Any,
    store: Datastore,
    prompt: str,
    lam: float,
    neighbours: int,
    temperature: float,
    max_tokens: int,
) -> tuple[KnnStep, ...]:
    """Greedy kNN-LM generation from `prompt` (tokenized as the attention view does: with special tokens)."""
    import torch

    if store.size == 0:
        raise ValueError("the datastore is empty")
    index = store.search_index()
    stops = _stop_ids(tokenizer, model)
    ids = [int(t) for t in tokenizer(prompt, add_special_tokens=True)["input_ids"]]
    steps: list[KnnStep] = []
    past: Any = None
    step_input = torch.tensor([ids], dtype=torch.long)
    for _ in range(max_tokens):
        with torch.no_grad():
            output = model.base_model(input_ids=step_input, past_key_values=past, use_cache=True)
            past = output.past_key_values
            hidden = output.last_hidden_state[0, -1].float()
            logits = model.lm_head(hidden).float().numpy().astype(np.float64)
        p_lm = np.exp(logits - logits.max())
        p_lm /= p_lm.sum()
        knn = knn_distribution(store, index, hidden.numpy(), neighbours, temperature, len(p_lm))
        mixed = lam * knn.probabilities + (1.0 - lam) * p_lm
        chosen = int(np.argmax(mixed))
        if chosen in stops:
            break
        steps.append(_step(tokenizer, store, chosen, p_lm, knn, mixed))
        step_input = torch.tensor([[chosen]], dtype=torch.long)
    return tuple(steps)


def _step(
    tokenizer: Any,
    store: Datastore,
    chosen: int,
    p_lm: npt.NDArray[np.float64],
    knn: KnnDistribution,
    mixed: npt.NDArray[np.float64],
) -> KnnStep:
    def text(token_id: int) -> str:
        return str(tokenizer.decode([token_id]))

    p_knn, rows, distances, weights = knn.probabilities, knn.rows, knn.distances, knn.weights
    support = np.flatnonzero(p_knn)
    ranked = support[np.argsort(-p_knn[support], kind="stable")]
    counts: dict[str, int] = {}
    for row in rows:
        file = store.files[int(store.file_index[row])]
        counts[file] = counts.get(file, 0) + 1
    found = tuple(
        Neighbour(
            file=store.files[int(store.file_index[row])],
            passage_id=int(store.passage_ids[row]),
            position=int(store.positions[row]),
            distance=float(distance),
            token=text(int(store.tokens[row])),
            value=text(int(store.values[row])),
            value_id=int(store.values[row]),
            weight=float(weight),
        )
        for row, distance, weight in list(zip(rows, distances, weights, strict=True))[:TRACE_NEIGHBOURS]
    )
    return KnnStep(
        token_id=chosen,
        text=text(chosen),
        p_lm=float(p_lm[chosen]),
        p_knn=float(p_knn[chosen]),
        p=float(mixed[chosen]),
        lm_token=text(int(np.argmax(p_lm))),
        lm_token_id=int(np.argmax(p_lm)),
        knn_probs=tuple((int(i), text(int(i)), float(p_knn[i])) for i in ranked),
        neighbours=found,
        file_counts=tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0]))),
    )


def _stop_ids(tokenizer: Any, model: Any) -> set[int]:
    """End-of-turn tokens: the generation config's (Qwen: <|im_end|>, <|endoftext|>) and the tokenizer's."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    stops: Sequence[Any] = configured if isinstance(configured, list | tuple) else [configured]
    found = {int(token) for token in stops if token is not None}
    if tokenizer.eos_token_id is not None:
        found.add(int(tokenizer.eos_token_id))
    return found
