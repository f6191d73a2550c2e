"""Small evaluation data about made-up things, shared by the tests of the measuring
(tests/rag_engine/evaluation/) and of the terminal commands (tests/ragscope/test_eval_*.py).

- `QUESTIONS` / `write_questions`: a questions.jsonl for the zoology domain of tests/conftest.py's folder (two
  questions its files answer, one whose expected file is deliberately the other one: a miss with a known rank);
- `squad_file`: a two-article SQuAD file; `echo_engine`: fake models whose echoed answers are long enough to
  reach the gold words.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag_engine.config import Config
from rag_engine.engine import Engine
from tests.conftest import write
from tests.fakes import EchoGenerator, HashingEmbedder

QUESTIONS = [
    {"question": "zorblat valley of Quenth blue moss", "source": "zorblat.md", "answer": "blue moss"},
    {"question": "quillfish cold lakes of Varnholm spines", "source": "quillfish.txt", "answer": "forty-two"},
    # Expected file deliberately wrong: zorblat.md is nearest, quillfish.txt second.
    {"question": "Agatha Plimm described the zorblat in 1887", "source": "quillfish.txt"},
]


def write_questions(config: Config, domain: str = "zoology", lines: list[str] | None = None) -> Path:
    rows = lines if lines is not None else [json.dumps(q) for q in QUESTIONS]
    return write(Path(config.paths.knowledge_dir) / domain / "questions.jsonl", "\n".join(rows) + "\n")


def questions_engine(config: Config) -> Engine:
    """Fake models over the small folder, with `QUESTIONS` written for zoology."""
    write_questions(config)
    return Engine(config, embedder=HashingEmbedder, generator=EchoGenerator)


def squad_file(path: Path) -> Path:
    """A two-article SQuAD file about made-up things, with the phrasing the fake embedder can match."""
    data: dict[str, Any] = {
        "version": "1.1",
        "data": [
            {
                "title": "Zorblat",
                "paragraphs": [
                    {
                        "context": "The zorblat lives in the valley of Quenth and eats blue moss.",
                        "qas": [
                            {"id": "q1", "question": "What does the zorblat eat?", "answers": [{"text": "blue moss"}]},
                            {"id": "q2", "question": "Where does the zorblat live?", "answers": []},
                        ],
                    },
                    {
                        "context": "Agatha Plimm first described the zorblat in 1887.",
                        "qas": [
                            {
                                "id": "q3",
                                "question": "Who first described the zorblat?",
                                "answers": [{"text": "Agatha Plimm"}, {"text": "Plimm"}],
                            }
                        ],
                    },
                ],
            },
            {
                "title": "Quill fish/Varnholm",
                "paragraphs": [
                    {
                        "context": "The quillfish swims in the cold lakes of Varnholm. It has forty-two spines.",
                        "qas": [
                            {
                                "id": "q4",
                                "question": "How many spines has the quillfish?",
                                "answers": [{"text": "forty-two"}],
                            }
                        ],
                    }
                ],
            },
        ],
    }
    return write(path, json.dumps(data))


def echo_engine(config: Config) -> Engine:
    # Long enough echoes that an answer from the right paragraph reaches the gold words.
    return Engine(config, embedder=HashingEmbedder, generator=lambda: EchoGenerator(answer_words=40))
