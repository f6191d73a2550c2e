"""`ragscope eval WHAT`: the evaluation subcommands.

`eval retrieval` (a BEIR-format folder: nDCG@10, recall@10/100, MRR@10) is defined here; `eval qa` (SQuAD),
`eval domains` (the domains' questions.jsonl, retrieval only) and `eval answers` (the same questions, answered)
come from `eval_qa.py`, `eval_domains.py` and `eval_answers.py`. Each of those defines `register(subparsers)`,
which adds its subcommand (with the common options) and sets the parser's `eval_handler(args, engine) -> int`
default, the function `ragscope eval` then runs. The measuring itself lives in `rag_engine/evaluation/`
(measurement only: no argparse, no printing); these modules parse, print and draw the progress bars.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

from rag_engine.config import FUSION_METHODS, RETRIEVAL_MODES
from rag_engine.engine import Engine
from rag_engine.errors import QuestionError
from rag_engine.evaluation.beir import evaluate_beir, load_beir

from . import eval_answers, eval_domains, eval_qa
from .options import common_options
from .progress import progress_bars

# The subcommands defined in modules of their own, in the order `ragscope eval --help` lists them.
SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], argparse.ArgumentParser], ...] = (
    eval_qa.register,
    eval_domains.register,
    eval_answers.register,
)


def add_eval_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("eval", help="measure retrieval and answer quality on data with known answers")
    subcommands = parser.add_subparsers(dest="eval_command", required=True, metavar="WHAT")

    retrieval = subcommands.add_parser(
        "retrieval",
        help="nDCG@10, recall@10/100 and MRR@10 on a BEIR-format folder",
        description="Embed a BEIR corpus (one passage per document, title + text) through the engine's "
        "embedding cache and search every judged query the engine's way; report the metrics as trec_eval does.",
    )
    common_options(retrieval)
    retrieval.add_argument(
        "--beir", type=Path, required=True, metavar="DIR", help="corpus.jsonl, queries.jsonl, qrels/"
    )
    retrieval.add_argument("--split", default="test", metavar="NAME", help="qrels/NAME.tsv (default: test)")
    retrieval.add_argument("--mode", choices=RETRIEVAL_MODES, help="default: retrieval.mode")
    retrieval.add_argument("--fusion", choices=FUSION_METHODS, help="hybrid: default retrieval.fusion")
    retrieval.add_argument("--blend-weight", type=float, metavar="W", help="blend: the dense share, 0..1")
    retrieval.add_argument("--rrf-k", type=float, metavar="K", help="rrf: the constant k")
    retrieval.add_argument(
        "--rerank",
        choices=("none", "mmr"),
        help="re-rank the top 10 with MMR as the engine does (default: on when retrieval.mmr_lambda < 1)",
    )
    retrieval.add_argument(
        "--mmr-lambda", type=float, metavar="L", help="mmr: relevance vs. diversity, 0..1 (default: config, else 0.7)"
    )
    retrieval.add_argument(
        "--mmr-candidates", type=int, metavar="N", help="mmr: how many candidates it picks from (default: config)"
    )
    retrieval.add_argument("--limit-queries", type=int, metavar="N", help="only the first N judged queries")
    retrieval.add_argument("--json", action="store_true", help="print the numbers as one JSON object")
    retrieval.set_defaults(eval_handler=run_retrieval)

    for register in SUBCOMMANDS:
        register(subcommands)


def cmd_eval(args: argparse.Namespace, engine: Engine) -> int:
    return int(args.eval_handler(args, engine))


# `--rerank mmr` with a config that has MMR off (lambda 1): a middle-of-the-road lambda.
DEFAULT_MMR_LAMBDA = 0.7


def _mmr_lambda(args: argparse.Namespace, configured: float) -> float | None:
    """The MMR lambda the run uses: none = off (1.0); mmr = the option, else the config's if on, else 0.7."""
    if args.rerank == "none":
        return 1.0
    if args.mmr_lambda is not None:
        return float(args.mmr_lambda)
    if args.rerank == "mmr" and configured >= 1.0:
        return DEFAULT_MMR_LAMBDA
    return None


def run_retrieval(args: argparse.Namespace, engine: Engine) -> int:
    if args.limit_queries is not None and args.limit_queries < 1:
        raise QuestionError("--limit-queries must be at least 1")
    if args.blend_weight is not None and not 0.0 <= args.blend_weight <= 1.0:
        raise QuestionError("--blend-weight must be between 0 and 1")
    if args.rrf_k is not None and args.rrf_k < 0:
        raise QuestionError("--rrf-k must be at least 0")
    if args.mmr_lambda is not None and not 0.0 <= args.mmr_lambda <= 1.0:
        raise QuestionError("--mmr-lambda must be between 0 and 1")
    if args.mmr_candidates is not None and args.mmr_candidates < 1:
        raise QuestionError("--mmr-candidates must be at least 1")
    settings = engine.config.retrieval
    overrides = {
        "fusion": args.fusion,
        "blend_weight": args.blend_weight,
        "rrf_k": args.rrf_k,
        "mmr_lambda": _mmr_lambda(args, settings.mmr_lambda),
        "mmr_candidates": args.mmr_candidates,
    }
    settings = dataclasses.replace(settings, **{key: value for key, value in overrides.items() if value is not None})
    mode = args.mode or settings.mode

    data = load_beir(args.beir, args.split, args.limit_queries)
    with progress_bars() as bars:
        report = evaluate_beir(data, engine, mode, settings, bars)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    how = mode
    if report.fusion is not None:
        fusion = report.fusion
        how += (
            f" ({fusion.method}, weight {fusion.weight:g})"
            if fusion.method == "blend"
            else f" (rrf, k {fusion.rrf_k:g})"
        )
    if report.rerank is not None:
        how += f", MMR top 10 (lambda {report.rerank.lam:g}, from {report.rerank.candidates})"
    print(f"{data.name} / {data.split}: {report.queries} queries, {report.documents} documents, {how}")
    for name, value in report.metrics.items():
        print(f"  {name:<11} {value:.4f}")
    print(f"{report.embedded} documents embedded, {report.reused} from the embedding cache; {report.seconds:.1f} s")
    return 0
