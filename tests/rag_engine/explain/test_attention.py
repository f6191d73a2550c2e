"""The attention map: the bundled SmolLM2 GGUF read by transformers, over a real prompt and answer.

The model is loaded once for the module (about 15 s) and the real answer is attended once; the other checks use
short inputs. The tests without a model (lazy construction, unreadable files) are fast and unmarked.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from rag_engine.config import Config, GenerationConfig
from rag_engine.engine import Engine
from rag_engine.errors import AttentionUnavailable, RagError
from rag_engine.explain.attention import AttentionMap, AttentionModel
from rag_engine.records import Answer
from tests.conftest import SHIPPED_KNOWLEDGE

real_models = pytest.mark.real_models

SHORT_PROMPT = "<|im_start|>user\nWhat does the zorblat eat?<|im_end|>\n<|im_start|>assistant\n"
SHORT_ANSWER = "The zorblat eats blue moss."


@pytest.fixture(scope="module")
def attention_model() -> AttentionModel:
    model = AttentionModel(GenerationConfig(model="smollm2"))
    model.load()
    assert model.loaded
    return model


@pytest.fixture(scope="module")
def small_engine(shipped_config: Config) -> Engine:
    """The shipped settings with the small bundled model, whose attention these tests read (the default model's
    de-quantisation alone takes a minute; the machinery is the same)."""
    generation = dataclasses.replace(shipped_config.generation, model="smollm2")
    return Engine(dataclasses.replace(shipped_config, generation=generation))


@pytest.fixture(scope="module")
def answer(small_engine: Engine) -> Answer:
    """A real RAG answer from the shipped history documents: the real prompt builder and generator."""
    first = (SHIPPED_KNOWLEDGE / "history" / "questions.jsonl").read_text(encoding="utf-8").splitlines()[0]
    result = small_engine.answer(json.loads(first)["question"], "history", k=2)
    assert result.covered and result.prompt and result.text
    return result


def contexts(answer: Answer) -> list[str]:
    return list(answer.contexts)


@pytest.fixture(scope="module")
def attention(attention_model: AttentionModel, answer: Answer) -> AttentionMap:
    return attention_model.attend(answer.prompt, answer.text, contexts(answer), answer.question)


# -- without a model ------------------------------------------------------------------------------------
def test_constructing_does_not_load() -> None:
    model = AttentionModel(GenerationConfig(model="smollm2"))
    assert not model.loaded
    # Not even the file is looked at until the first attend.
    AttentionModel(GenerationConfig(model="smollm2", model_path="/nowhere/missing.gguf"))


def test_an_unreadable_model_file_gives_a_clear_reason(tmp_path: Path) -> None:
    path = tmp_path / "x.gguf"
    path.write_text("this is not a model\n", encoding="utf-8")
    model = AttentionModel(GenerationConfig(model="smollm2", model_path=str(path)))
    with pytest.raises(AttentionUnavailable, match=r"cannot read x\.gguf .*not a GGUF file") as caught:
        model.attend(SHORT_PROMPT, SHORT_ANSWER)
    assert isinstance(caught.value, RagError) and not model.loaded
    # The failure is remembered rather than retried on every question.
    with pytest.raises(AttentionUnavailable) as again:
        model.attend(SHORT_PROMPT, SHORT_ANSWER)
    assert again.value is caught.value


def test_a_missing_model_file_gives_a_clear_reason(tmp_path: Path) -> None:
    model = AttentionModel(GenerationConfig(model="smollm2", model_path=str(tmp_path / "missing.gguf")))
    with pytest.raises(AttentionUnavailable, match="GGUF model file not found"):
        model.attend(SHORT_PROMPT, SHORT_ANSWER)


def test_no_prompt_and_bad_layer_counts_are_refused() -> None:
    model = AttentionModel(GenerationConfig(model="smollm2"))
    with pytest.raises(AttentionUnavailable, match="no prompt"):
        model.attend("", "I can't answer that.")
    with pytest.raises(ValueError, match="last_layers"):
        model.attend(SHORT_PROMPT, SHORT_ANSWER, last_layers=0)
    assert not model.loaded


# -- the real model -------------------------------------------------------------------------------------
@real_models
def test_one_row_per_answer_token_and_rows_sum_to_one(attention: AttentionMap, answer: Answer) -> None:
    weights = attention.weights
    assert weights.dtype == np.float32
    assert weights.shape == (len(attention.answer_tokens), len(attention.prompt_tokens))
    assert len(attention.answer_tokens) >= 2
    assert np.all(weights >= 0) and np.all(np.isfinite(weights))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-4)
    assert attention.layers == (26, 27, 28, 29) and attention.heads == 9


@real_models
def test_tokens_give_the_texts_back(attention: AttentionMap, answer: Answer) -> None:
    assert "".join(attention.prompt_tokens) == answer.prompt
    assert "".join(attention.answer_tokens) == answer.text
    assert attention.prompt_tokens[0] == "<|im_start|>"


@real_models
def test_the_prompt_is_tokenised_as_the_generator_tokenised_it(
    attention: AttentionMap, attention_model: AttentionModel, answer: Answer, small_engine: Engine
) -> None:
    assert len(attention.prompt_tokens) == answer.prompt_tokens
    llama = small_engine.generator()._llm.tokenize(answer.prompt.encode("utf-8"), add_bos=False, special=True)
    tokenizer = attention_model._load().tokenizer
    assert tokenizer(answer.prompt, add_special_tokens=True)["input_ids"] == llama


@real_models
def test_spans_cover_the_passages_and_the_question(attention: AttentionMap, answer: Answer) -> None:
    passages = contexts(answer)
    assert [label for label, _, _ in attention.spans] == [*(f"[{n}]" for n in range(1, len(passages) + 1)), "question"]
    texts = [*passages, answer.question]
    tokens = attention.prompt_tokens
    previous_end = 0
    for (_label, start, end), text in zip(attention.spans, texts, strict=True):
        assert previous_end <= start < end <= len(tokens)
        covered = "".join(tokens[start:end])
        assert text in covered and " ".join(text.split()[:5]) in covered
        # Tight: dropping the first or the last token loses part of the text.
        assert text not in "".join(tokens[start + 1 : end]) and text not in "".join(tokens[start : end - 1])
        previous_end = end
    # The question is the one in "Question: ...", after the passages.
    _label, start, _end = attention.spans[-1]
    assert "".join(tokens[start - 2 : start]).endswith("Question:")


@real_models
def test_the_average_matches_a_manual_computation(attention_model: AttentionModel) -> None:
    result = attention_model.attend(SHORT_PROMPT, SHORT_ANSWER, last_layers=3)
    tokenizer, model = attention_model._load()
    prompt_ids = tokenizer(SHORT_PROMPT)["input_ids"]
    answer_ids = tokenizer(SHORT_ANSWER, add_special_tokens=False)["input_ids"]
    assert len(result.prompt_tokens) == len(prompt_ids) and len(result.answer_tokens) == len(answer_ids)
    with torch.no_grad():
        outputs = model(torch.tensor([prompt_ids + answer_ids]), output_attentions=True)
    assert len(outputs.attentions) == 30
    stacked = torch.stack(outputs.attentions[-3:])[:, 0]  # [layers, heads, seq, seq]
    averaged = stacked.mean(dim=(0, 1)).numpy()
    # Answer token i is produced by the step whose query is the token before it.
    n = len(prompt_ids)
    rows = averaged[n - 1 : n - 1 + len(answer_ids), :n]
    expected = rows / rows.sum(axis=1, keepdims=True)
    assert result.layers == (27, 28, 29)
    np.testing.assert_allclose(result.weights, expected, atol=1e-5)
    # The first answer token sees only the prompt, so its row needed no renormalising.
    np.testing.assert_allclose(rows[0].sum(), 1.0, atol=1e-5)


@real_models
def test_last_layers_chooses_the_layers(attention_model: AttentionModel) -> None:
    last = attention_model.attend(SHORT_PROMPT, SHORT_ANSWER, last_layers=1)
    everything = attention_model.attend(SHORT_PROMPT, SHORT_ANSWER, last_layers=100)
    assert last.layers == (29,) and everything.layers == tuple(range(30))
    assert not np.allclose(last.weights, everything.weights, atol=1e-3)
    for result in (last, everything):
        np.testing.assert_allclose(result.weights.sum(axis=1), 1.0, atol=1e-4)


@real_models
def test_an_empty_answer_has_no_rows_and_a_missing_context_no_span(attention_model: AttentionModel) -> None:
    result = attention_model.attend(SHORT_PROMPT, "", contexts=["not in the prompt", "zorblat"], question="eat?")
    assert result.weights.shape == (0, len(result.prompt_tokens))
    assert [label for label, _, _ in result.spans] == ["[2]", "question"]
    assert result.to_dict()["spans"][0] == {"label": "[2]", "start": result.spans[0][1], "end": result.spans[0][2]}


@real_models
def test_concurrent_calls_give_the_same_map(attention_model: AttentionModel) -> None:
    results: list[AttentionMap] = []

    def run() -> None:
        results.append(attention_model.attend(SHORT_PROMPT, SHORT_ANSWER))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    np.testing.assert_array_equal(results[0].weights, results[1].weights)
    data = results[0].to_dict()
    assert json.loads(json.dumps(data))["answer_tokens"] == list(results[0].answer_tokens)
