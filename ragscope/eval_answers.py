"""`ragscope eval answers`: right answers with RAG, without RAG and with the gold passage (oracle), and why the
wrong ones are, as a table or JSON.

The options, the progress bars and the table are here; the asking and scoring is `rag_engine.evaluation.answers`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rag_engine.config import HOPS
from rag_engine.engine import Engine
from rag_engine.errors import QuestionError, QuestionsFileError
from rag_engine.evaluation.answers import COLUMNS, evaluate_answers, report
from rag_engine.evaluation.domains import MULTIHOP_FILE, chosen_domains, load_questions, questions_path

from .options import common_options
from .progress import progress_bar


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add `answers` to the `eval` subcommands; the parser's `eval_handler` default is `run_answers`."""
    parser = subparsers.add_parser(
        "answers",
        help="right answers with RAG, without RAG and with the gold passage (oracle), and why wrong ones are",
        description="Ask each domain's questions.jsonl (or multihop.jsonl) questions and score the answers by "
        "their key tokens.",
    )
    common_options(parser)
    parser.add_argument("--domain", help="only this domain (default: every domain with a questions.jsonl)")
    parser.add_argument(
        "--questions",
        metavar="FILE",
        help=f"'multihop': each domain's {MULTIHOP_FILE}; else another questions file (needs --domain)",
    )
    parser.add_argument(
        "--hops", type=int, choices=HOPS, help="retrieval rounds for the RAG answers (default: retrieval.hops)"
    )
    parser.add_argument(
        "--columns", default=",".join(COLUMNS), help=f"comma-separated, of {', '.join(COLUMNS)} (default: all)"
    )
    parser.add_argument("--json", action="store_true", help="print the report and every answer as JSON")
    parser.set_defaults(eval_handler=run_answers)
    return parser


def run_answers(args: argparse.Namespace, engine: Engine) -> int:
    columns = tuple(name.strip() for name in args.columns.split(",") if name.strip())
    unknown = set(columns) - set(COLUMNS)
    if unknown or "rag" not in columns:
        raise QuestionError(f"--columns takes rag (always) and any of norag, oracle; not {', '.join(unknown)}")
    multihop = args.questions == "multihop"
    if args.questions is not None and not multihop and not args.domain:
        raise QuestionError("--questions needs --domain (the domain whose documents answer them)")
    if multihop:
        asked = [engine.check_domain(args.domain)] if args.domain else engine.domains()
        names = [name for name in asked if (engine.domain_folder(name) / MULTIHOP_FILE).is_file()]
        if not names:
            raise QuestionsFileError(f"no chosen domain has a {MULTIHOP_FILE}")
    else:
        names = chosen_domains(engine, args.domain)
    started = time.perf_counter()
    per_domain = {}
    for name in names:
        path = questions_file(engine, name, args.questions)
        questions = load_questions(path)
        with progress_bar(f"asking {name}", "question") as progress:
            per_domain[name] = evaluate_answers(engine, name, questions, columns, progress, args.hops)
    body = report(engine, per_domain, time.perf_counter() - started, args.hops)
    print(json.dumps(body, ensure_ascii=False, indent=2) if args.json else render(body))
    return 0


def questions_file(engine: Engine, domain: str, chosen: str | None) -> Path:
    """The file `--questions` names for `domain`: its questions.jsonl (None), its multihop.jsonl
    ("multihop"), or the given path."""
    if chosen is None:
        return questions_path(engine, domain)
    return engine.domain_folder(domain) / MULTIHOP_FILE if chosen == "multihop" else Path(chosen)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def render(body: dict[str, Any]) -> str:
    """The table (domain × RAG / no RAG / oracle / unanswerable refused), distances, reasons, wrong answers."""
    rows = [*body["domains"].items(), ("overall", body["overall"])]
    width = max(len(name) for name, _ in rows)
    lines = [
        f"{body['models']['generator']}, k={body['settings']['k']}, {body['settings']['mode']}, "
        f"hops={body['settings']['hops']}",
        f"{'domain':<{width}}  {'asked':>5}  {'RAG':>5}  {'no RAG':>6}  {'oracle':>6}  {'refused*':>8}  "
        f"{'sources†':>8}  {'p50 s':>5}  nearest distance: answerable | unanswerable (min/median/max)",
    ]
    for name, summary in rows:
        spans = []
        for which in ("distance.answerable", "distance.unanswerable"):
            d = summary[which]
            spans.append(f"{d['min']:.2f}/{d['median']:.2f}/{d['max']:.2f}" if d else "–")
        p50 = summary["seconds.p50"]
        lines.append(
            f"{name:<{width}}  {summary['questions']:>5}  {_pct(summary['rag.right']):>5}  "
            f"{_pct(summary['norag.right']):>6}  {_pct(summary['oracle.right']):>6}  "
            f"{_pct(summary['unanswerable.refused']):>8}  {_pct(summary['sources.retrieved']):>8}  "
            f"{p50 if p50 is not None else '–':>5}  "
            f"{spans[0]} | {spans[1]}"
        )
    lines.append("* unanswerable questions that were refused; RAG, no RAG and oracle count answerable questions")
    lines.append("† answerable questions whose every source file was retrieved (by either round with two hops)")
    why = body["overall"]["why"]
    if why:
        lines.append("wrong RAG answers: " + ", ".join(f"{reason} {count}" for reason, count in sorted(why.items())))
    for result in body["results"]:
        if result["why"]:
            lines.append(f"  [{result['domain']}] {result['question']}")
            lines.append(f"      {result['why']}: {result['rag']['answer'][:160]!r}  (key {result['key']})")
    return "\n".join(lines)
