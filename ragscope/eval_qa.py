"""`ragscope eval qa --squad FILE`: exact match and F1 on a SQuAD file, with and without RAG, and retrieval hit@k.

The options, the knowledge folder the paragraphs are written to (a temporary one, or `--knowledge-out`), the
progress bars and the table are here; reading the file, the metrics and the asking are
`rag_engine.evaluation.qa`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from contextlib import ExitStack
from pathlib import Path

from rag_engine.engine import Engine
from rag_engine.errors import QuestionError
from rag_engine.evaluation.qa import QaReport, domain_name, evaluate_squad, load_squad, write_knowledge

from .options import common_options
from .progress import progress_bar


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add `qa` to the `eval` subcommands; the parser's `eval_handler` default is `run_qa`."""
    parser = subparsers.add_parser(
        "qa",
        help="exact match and F1 on a SQuAD file, with and without RAG, and retrieval hit@k",
        description="Index the paragraphs of a SQuAD-format file as one domain, answer its questions with and "
        "without RAG, and score them with the official SQuAD v1.1 exact match and F1. The knowledge folder is "
        "the paragraphs' (--knowledge is not used); the settings, models and data folder are the usual ones.",
    )
    common_options(parser)
    parser.add_argument("--squad", type=Path, required=True, metavar="FILE", help="a SQuAD v1.1-format JSON file")
    parser.add_argument("--limit", type=int, metavar="N", help="ask N questions spread over the file (default: all)")
    parser.add_argument("--k", type=int, help="passages to retrieve (default: retrieval.top_k)")
    parser.add_argument("--json", action="store_true", help="print the numbers and every answer as JSON")
    parser.add_argument(
        "--no-oracle", action="store_true", help="skip the oracle column (the gold paragraph as the only context)"
    )
    parser.add_argument(
        "--knowledge-out",
        type=Path,
        metavar="DIR",
        help="write the paragraphs under DIR/<file name>/ and keep them (default: a temporary folder)",
    )
    parser.set_defaults(eval_handler=run_qa)
    return parser


def run_qa(args: argparse.Namespace, engine: Engine) -> int:
    """`ragscope eval qa`: `engine` gives the settings, data folder and models; the knowledge folder is the
    SQuAD paragraphs'."""
    if args.limit is not None and args.limit < 1:
        raise QuestionError("--limit must be at least 1")
    if args.k is not None and args.k < 1:
        raise QuestionError("--k must be at least 1")
    squad = load_squad(args.squad)
    domain = domain_name(args.squad)
    with ExitStack() as stack:
        if args.knowledge_out is not None:
            root = Path(args.knowledge_out)
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ragscope-squad-")))
        write_knowledge(squad, root / domain)
        # Same models (already-loaded ones are shared, and a test's fakes stay fakes), other knowledge folder.
        squad_engine = engine.with_config(engine.config.with_paths(knowledge_dir=root))
        with progress_bar(f"indexing {domain}", "passage") as progress:
            squad_engine.index(domain, progress)
        with progress_bar("asking (RAG and no RAG)", "question") as progress:
            report = evaluate_squad(
                squad_engine, squad, domain, args.k, args.limit, progress, oracle=not args.no_oracle
            )
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(render_report(report))
    return 0


def render_report(report: QaReport) -> str:
    numbers = report.summary()
    return "\n".join(
        [
            f"SQuAD {report.squad}: {numbers['questions']} of {report.available} questions, "
            f"{report.paragraphs} paragraphs, k={report.k}, {numbers['models']['generator']}",
            f"{'':<8}{'EM':>7}{'F1':>8}{'contains':>10}",
            f"{'RAG':<8}{numbers['rag.em']:>7.1%}{numbers['rag.f1']:>8.1%}{numbers['rag.contains']:>10.1%}",
            f"{'no RAG':<8}{numbers['norag.em']:>7.1%}{numbers['norag.f1']:>8.1%}{numbers['norag.contains']:>10.1%}",
            *(
                [f"{'oracle':<8}{'':>7}{numbers['oracle.f1']:>8.1%}{numbers['oracle.contains']:>10.1%}"]
                if report.oracle
                else []
            ),
            f"retrieval hit@{report.k}: {numbers['hit@k']:.1%} (covered: {numbers['rag.covered']:.1%})",
            f"flagged by the support check: {numbers['rag.flagged']:.1%} of RAG answers "
            f"({numbers['rag.flagged_right']:.1%} that hold the gold answer)",
            f"{report.seconds:.0f} s, {numbers['seconds_per_question']:.2f} s per question",
        ]
    )
