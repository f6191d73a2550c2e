"""`ragscope eval domains`: retrieval hit@k and MRR of each domain's questions.jsonl, as a table or JSON.

The options, the progress bars and the table are here; the measuring is `rag_engine.evaluation.domains`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from rag_engine.config import RETRIEVAL_MODES
from rag_engine.engine import Engine
from rag_engine.errors import QuestionError
from rag_engine.evaluation.domains import MRR_DEPTH, DomainReport, chosen_domains, evaluate_domain, overall

from .options import common_options
from .progress import progress_bar


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add `domains` to the `eval` subcommands; the parser's `eval_handler` default is `run_domains`."""
    parser = subparsers.add_parser(
        "domains",
        help="retrieval hit@k and MRR of each domain's questions.jsonl",
        description="For each domain with a questions.jsonl: is the expected file among the top k passages "
        f"(hit@k), and how high does it rank within the top {MRR_DEPTH} (MRR)? Retrieval only, no generation.",
    )
    common_options(parser)
    parser.add_argument("--domain", help="only this domain (default: every domain with a questions.jsonl)")
    parser.add_argument("--k", type=int, help="passages that count as retrieved (default: retrieval.top_k)")
    parser.add_argument("--mode", choices=RETRIEVAL_MODES, help="dense, bm25 or hybrid (default: retrieval.mode)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(eval_handler=run_domains)
    return parser


def run_domains(args: argparse.Namespace, engine: Engine) -> int:
    """`ragscope eval domains`: one report per domain and the overall numbers."""
    if args.k is not None and args.k < 1:
        raise QuestionError("--k must be at least 1")
    reports = []
    for name in chosen_domains(engine, args.domain):
        with progress_bar(f"evaluating {name}", "question") as progress:
            reports.append(evaluate_domain(engine, name, args.k, progress=progress, mode=args.mode))
    if args.json:
        first = reports[0]
        body = {"k": first.k, "depth": first.depth, "mode": first.mode, "domains": [r.to_dict() for r in reports]}
        print(json.dumps({**body, "overall": overall(reports)}, ensure_ascii=False, indent=2))
    else:
        print(render_reports(reports))
    return 0


def render_reports(reports: Sequence[DomainReport]) -> str:
    """A table (domain, questions, hit@k, MRR, overall) and then every miss."""
    k, depth = reports[0].k, reports[0].depth
    width = max(len("overall"), *(len(r.domain) for r in reports))
    lines = [f"{'domain':<{width}}  questions  hit@{k:<4} MRR@{depth}   ({reports[0].mode})"]
    for report in reports:
        lines.append(f"{report.domain:<{width}}  {report.questions:>9}  {report.hit_at_k:>6.1%}  {report.mrr:.3f}")
    total = overall(reports)
    lines.append(f"{'overall':<{width}}  {total['questions']:>9}  {total['hit@k']:>6.1%}  {total['mrr']:.3f}")
    misses = [(report.domain, miss) for report in reports for miss in report.misses]
    if misses:
        lines.append(f"\nmisses (expected file not in the top {k}):")
        for domain, miss in misses:
            rank = f"rank {miss.rank}" if miss.rank else f"not in the top {depth}"
            lines.append(f"  [{domain}] {miss.question}")
            lines.append(f"      expected {miss.expected} ({rank}); got {', '.join(miss.got) or 'nothing'}")
    return "\n".join(lines)
