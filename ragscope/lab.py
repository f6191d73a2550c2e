"""`ragscope lab NAME QUESTION`: run one RAG lab experiment on a question and show its report.

The experiments are `rag_engine.lab`'s (`EXPERIMENTS`: k, mmr, retriever, hops, knnlm), each a real run of the
pipeline that returns a `LabReport`; this module only parses, prints and writes. Text output is the report's
`lines()` and then its `explanation`; `--json` prints `to_dict()` instead; `--png FILE` writes the picture
(`png()`) as well. Errors are the CLI's: a `RagError` raised here reaches its one boundary in `cli.py`.

Not here: what an experiment measures (`rag_engine/lab/`), the Discord `/lab` group (`bot/cogs/lab.py`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from rag_engine.engine import Engine
from rag_engine.errors import RagError
from rag_engine.lab import EXPERIMENTS, run_experiment
from rag_engine.lab.report import LabReport

from .options import common_options


class LabOutputError(RagError):
    """The picture could not be written (`--png`): its folder is missing rights, the disk is full, …"""


def add_lab_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`lab NAME QUESTION [--domain D] [--json] [--png FILE]`, its help listing every experiment."""
    listing = "\n".join(f"  {name:<10} {summary}" for name, (_, _, summary) in EXPERIMENTS.items())
    parser = commands.add_parser(
        "lab",
        help=f"run a RAG lab experiment on one question ({', '.join(EXPERIMENTS)})",
        description="Run one experiment of the RAG lab on your question: a real run of the pipeline, measured.",
        epilog=f"experiments:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common_options(parser)
    parser.add_argument("experiment", choices=tuple(EXPERIMENTS), metavar="NAME", help="the experiment (see below)")
    parser.add_argument("question")
    parser.add_argument("--domain", help="the domain to run it in (default: the first domain)")
    parser.add_argument("--json", action="store_true", help="print everything measured as one JSON object")
    parser.add_argument("--png", type=Path, metavar="FILE", help="also write the experiment's picture here")


def run_lab(args: argparse.Namespace, engine: Engine, prepare: Callable[[Engine, str | None], None]) -> int:
    # Refuse bad input before any model is loaded or index built.
    engine.check(args.question, args.domain)
    # The lab runs in one domain: the one asked for, else the first (as `run_experiment` would pick), so only
    # that one is brought up to date first.
    domain = args.domain or next(iter(engine.domains()), None)
    if domain is not None:
        engine.load_embedder_in_background()  # while the index is read (as `ragscope ask` does)
        prepare(engine, domain)
    report = run_experiment(engine, args.experiment, args.question, domain)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(report.lines()))
        print()
        print(report.explanation)
    if args.png is not None:
        _write_png(report, args.png)
        if not args.json:  # --json prints one JSON object and nothing else on stdout
            print(f"wrote {args.png}")
    return 0


def _write_png(report: LabReport, path: Path) -> None:
    data = report.png()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise LabOutputError(f"could not write the picture to {path}: {exc.strerror or exc}") from exc
