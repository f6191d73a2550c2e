"""The kNN-LM contrast through the real models: a token datastore over the shipped history documents, p_kNN at
the first generated token, the mix at λ = 0 and λ = 1, and the whole report beside RAG and no retrieval.

These use the small bundled model (SmolLM2) read by transformers, as the attention tests do: the default model's
datastore takes minutes on two cores, and the machinery is the same. The datastore is capped at 2,000 tokens (the
history domain has more, so the cap is exercised) and answers at 8 tokens. Datastore cache tests are in
`test_knnlm_store.py`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rag_engine.config import Config, LabConfig
from rag_engine.engine import Engine
from rag_engine.explain.attention import AttentionModel
from rag_engine.generate.generation import gguf_path
from rag_engine.generate.prompt import build_norag_prompt
from rag_engine.lab import run_experiment
from rag_engine.lab.knnlm import KnnLmReport
from rag_engine.lab.knnlm_generate import generate, knn_distribution
from rag_engine.lab.knnlm_store import Datastore, load_or_build
from rag_engine.lab.report import LabReport
from tests.conftest import SHIPPED_KNOWLEDGE

pytestmark = pytest.mark.real_models

DOMAIN = "history"
CAP = 2_000
ANSWER_TOKENS = 8


@pytest.fixture(scope="module")
def engine(shipped_config: Config, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    # Short RAG and no-retrieval answers too: the comparison is the same at any length.
    generation = dataclasses.replace(shipped_config.generation, model="smollm2", max_answer_tokens=32)
    lab = dataclasses.replace(shipped_config.lab, knnlm_max_tokens=CAP, knnlm_answer_tokens=ANSWER_TOKENS)
    config = dataclasses.replace(shipped_config, generation=generation, lab=lab)
    return Engine(config.with_paths(data_dir=tmp_path_factory.mktemp("knnlm-data")))


@pytest.fixture(scope="module")
def question() -> str:
    first = (SHIPPED_KNOWLEDGE / DOMAIN / "questions.jsonl").read_text(encoding="utf-8").splitlines()[0]
    return str(json.loads(first)["question"])


@pytest.fixture(scope="module")
def report(engine: Engine, question: str) -> KnnLmReport:
    result = run_experiment(engine, "knnlm", question, DOMAIN)
    assert isinstance(result, KnnLmReport)
    return result


@pytest.fixture(scope="module")
def borrowed(engine: Engine) -> Iterator[tuple[Any, Any]]:
    source = engine.attention_model()
    assert isinstance(source, AttentionModel)
    with source.borrowed() as pair:
        yield pair


def prompt_ids(engine: Engine, tokenizer: Any, question: str) -> list[int]:
    config = engine.config
    budget = config.generation.max_context_tokens - config.generation.max_answer_tokens
    prompt = build_norag_prompt(question, engine.generator(), config.prompt, budget).text
    return [int(t) for t in tokenizer(prompt, add_special_tokens=True)["input_ids"]]


def store_of(engine: Engine, tokenizer: Any, model: Any) -> Datastore:
    """The run's datastore, from the cache the report's run wrote: reading it again must not build it again."""
    passages = list(engine.snapshot(DOMAIN).space.passages.values())
    config = engine.config
    store, origin = load_or_build(tokenizer, model, DOMAIN, passages, CAP, gguf_path(config.generation),
                                  Path(config.paths.data_dir))  # fmt: skip
    assert not origin.built
    return store


def test_p_knn_of_the_first_token_is_a_distribution_over_the_vocabulary_from_the_neighbours(
    report: KnnLmReport, engine: Engine, question: str, borrowed: tuple[Any, Any]
) -> None:
    tokenizer, model = borrowed
    store = store_of(engine, tokenizer, model)
    with torch.no_grad():
        hidden = model.base_model(input_ids=torch.tensor([prompt_ids(engine, tokenizer, question)])).last_hidden_state
        logits = model.lm_head(hidden[0, -1]).float().numpy().astype(np.float64)
    vocab = logits.shape[0]
    lab = engine.config.lab
    knn = knn_distribution(store, store.search_index(), hidden[0, -1].numpy(), lab.knnlm_neighbours,
                           lab.knnlm_temperature, vocab)  # fmt: skip
    p = knn.probabilities
    assert p.shape == (vocab,) and np.all(p >= 0)
    assert abs(p.sum() - 1.0) < 1e-6
    assert len(knn.rows) == lab.knnlm_neighbours and np.all(np.diff(knn.distances) >= 0)
    # Non-zero exactly at the tokens that followed the neighbours in the domain's text (a neighbour far enough
    # behind the nearest can get a weight that underflows to 0; the nearest always counts).
    assert knn.weights[0] > 0 and knn.weights.sum() == pytest.approx(1.0)
    weighted = {int(store.values[row]) for row, weight in zip(knn.rows, knn.weights, strict=True) if weight > 0}
    assert set(np.flatnonzero(p)) == weighted <= {int(v) for v in store.values}
    domain_files = {relative for relative, _ in engine.domain_files(DOMAIN)}
    assert {store.files[int(store.file_index[row])] for row in knn.rows} <= domain_files
    # The report's first step is this distribution, and its p is the mix of it with the model's own.
    first = report.steps[0]
    assert {token: prob for token, _, prob in first.knn_probs} == pytest.approx(
        {int(i): p[i] for i in np.flatnonzero(p)}
    )
    p_lm = np.exp(logits - logits.max())
    p_lm /= p_lm.sum()
    mixed = lab.knnlm_lambda * p + (1 - lab.knnlm_lambda) * p_lm
    assert first.token_id == int(np.argmax(mixed))
    assert first.p_knn == pytest.approx(p[first.token_id]) and first.p == pytest.approx(mixed[first.token_id])
    assert first.p_lm == pytest.approx(p_lm[first.token_id], abs=1e-5)
    assert {n.file for n in first.neighbours} <= domain_files


def test_the_keys_are_the_hidden_states_the_lm_head_reads(
    engine: Engine, report: KnnLmReport, borrowed: tuple[Any, Any]
) -> None:
    tokenizer, model = borrowed
    store = store_of(engine, tokenizer, model)
    passages = engine.snapshot(DOMAIN).space.passages
    # An entry from the middle of the store, recomputed alone (no batch, no padding).
    row = store.size // 2
    passage = passages[int(store.passage_ids[row])]
    ids = tokenizer(passage.text, add_special_tokens=False)["input_ids"]
    position = int(store.positions[row])
    assert int(store.tokens[row]) == ids[position] and int(store.values[row]) == ids[position + 1]
    with torch.no_grad():
        output = model(input_ids=torch.tensor([ids[: position + 1]]), output_hidden_states=True)
    np.testing.assert_allclose(store.keys[row], output.hidden_states[-1][0, -1].numpy(), atol=2e-3)
    with torch.no_grad():
        np.testing.assert_allclose(model.lm_head(torch.from_numpy(store.keys[row])).numpy(),
                                   output.logits[0, -1].numpy(), atol=2e-3)  # fmt: skip


def test_lambda_zero_gives_the_models_own_greedy_tokens_and_lambda_one_only_datastore_tokens(
    engine: Engine, report: KnnLmReport, question: str, borrowed: tuple[Any, Any]
) -> None:
    tokenizer, model = borrowed
    store = store_of(engine, tokenizer, model)
    ids = prompt_ids(engine, tokenizer, question)
    prompt = tokenizer.decode(ids)
    plain = generate(tokenizer, model, store, prompt, 0.0, 16, 1.0, ANSWER_TOKENS)
    with torch.no_grad():
        greedy = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                max_new_tokens=ANSWER_TOKENS, do_sample=False)  # fmt: skip
    expected = [int(t) for t in greedy[0, len(ids) :]]
    assert [step.token_id for step in plain] == expected[: len(plain)]
    assert all(step.p == pytest.approx(step.p_lm) and not step.changed for step in plain)
    only_knn = generate(tokenizer, model, store, prompt, 1.0, 16, 1.0, ANSWER_TOKENS)
    assert only_knn
    for step in only_knn:
        assert step.token_id in {token for token, _, _ in step.knn_probs}
        assert step.p == pytest.approx(step.p_knn)


def test_the_report_sets_kNN_LM_beside_RAG_and_no_retrieval(report: KnnLmReport, engine: Engine) -> None:
    conforming: LabReport = report  # mypy checks the protocol
    assert conforming.experiment == "knnlm" and report.domain == DOMAIN
    assert 1 <= len(report.steps) <= ANSWER_TOKENS and report.knnlm_answer
    assert report.rag.used_rag and not report.norag.used_rag and report.norag.text
    # The history domain holds more tokens than the cap: the store is cut there, and says so.
    store = report.store
    assert store.built and store.size == CAP < store.domain_tokens and store.capped
    assert store.passages_kept < store.domain_passages
    assert any("cut at the cap of 2,000" in line for line in report.lines())
    as_dict = report.to_dict()
    json.dumps(as_dict)
    assert as_dict["experiment"] == "knnlm" and as_dict["distance"] == "squared L2"
    assert as_dict["datastore"]["tokens"] == CAP and as_dict["datastore"]["capped"]
    assert len(as_dict["knnlm"]["steps"]) == len(report.steps)
    sentences = [s for s in report.explanation.split(". ") if s.strip()]
    assert 2 <= len(sentences) <= 3
    image = report.png()
    assert image.startswith(b"\x89PNG") and len(image) < 1_000_000


def test_lab_settings_out_of_range_are_refused(engine: Engine, question: str) -> None:
    from rag_engine.errors import QuestionError
    from rag_engine.lab.knnlm import run_knnlm

    query = engine.check(question, DOMAIN)
    with pytest.raises(QuestionError, match="lambda"):
        run_knnlm(engine, query, LabConfig(knnlm_lambda=1.5))
    with pytest.raises(QuestionError, match="cap"):
        run_knnlm(engine, query, LabConfig(knnlm_max_tokens=0))
