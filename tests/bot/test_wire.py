"""The records as JSON and back (`bot.wire`): what a worker sends is what the gateway renders, field for field."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bot.job_queue import AnswerJob
from bot.wire import WireFormatError, from_json, to_json
from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.records import Answer, Query
from tests.fakes import HashingEmbedder, ScriptedGenerator


def test_answers_of_every_kind_survive_the_round_trip(fake_engine: Engine, config: Config) -> None:
    covered = fake_engine.answer(fake_engine.check("Who described the zorblat, and when?", "zoology"))
    assert covered.hits and covered.support and covered.evidence is not None and covered.query_vector
    assert any(hit.passage.page_start is None for hit in covered.hits)
    no_rag = fake_engine.answer(fake_engine.check("Who described the zorblat?"), use_rag=False)
    far = dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, max_distance=0.01))
    not_covered = Engine(far, embedder=HashingEmbedder).answer(fake_engine.check("Unrelated words entirely?"))
    assert not not_covered.covered
    for answer in (covered, no_rag, not_covered):
        text = to_json(answer)
        assert from_json(Answer, text) == answer
        assert from_json(Answer, text.encode()) == answer
        json.loads(text)  # plain JSON, nothing Python-specific


def test_a_wrong_number_keeps_its_unsupported_claim(config: Config) -> None:
    engine = Engine(config, embedder=HashingEmbedder, generator=lambda: ScriptedGenerator("It weighs 99 kilograms."))
    answer = engine.answer(engine.check("How much does a zorblat weigh?", "zoology"))
    assert answer.unsupported
    assert from_json(Answer, to_json(answer)).unsupported == answer.unsupported


def test_a_job_survives_the_round_trip(fake_engine: Engine) -> None:
    job = AnswerJob(fake_engine.check("Where does the quillfish swim?", k=3, mode="hybrid"), False, 42, 1.5e9)
    assert from_json(AnswerJob, to_json(job)) == job
    everywhere = AnswerJob(fake_engine.check("Where?"), True, 1)
    assert from_json(AnswerJob, to_json(everywhere)) == everywhere and everywhere.query.domain is None


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"question": 1}', '{"query": {}, "use_rag": true}'])
def test_what_is_not_a_record_is_refused(text: str) -> None:
    with pytest.raises(WireFormatError):
        from_json(AnswerJob, text)
    with pytest.raises(WireFormatError):
        from_json(Query, text)


def test_only_records_are_written() -> None:
    with pytest.raises(TypeError):
        to_json({"a": 1})
    with pytest.raises(TypeError):
        to_json(Query)
