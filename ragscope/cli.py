"""The `ragscope` console script: argument parsing, the subcommands, and the one place where engine errors
become a one-line reason and an exit code for the terminal.

Subcommands here: ask, index, domains, chat, watch, pipeline. `run` hands over to the bot (`bot/app.py`), imported only
then: the console script is where the two packages meet; the engine modules never import the bot or discord.
The interactive loop is in `chat.py`, the pipeline view's files in `pipeline.py`, the RAG lab in `lab.py`, the
`eval` group in `eval_commands.py` (and `eval_qa.py`, `eval_domains.py`, `eval_answers.py`), the options every
subcommand shares in `options.py`, progress bars in `progress.py`, formatting in `render.py`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from rag_engine.config import HOPS, RETRIEVAL_MODES, Config
from rag_engine.engine import Engine, generator_name
from rag_engine.errors import IndexStoreError, KnowledgeFolderReadError, RagError
from rag_engine.ingest.incremental import Progress
from rag_engine.safe_names import display_name

from . import render
from .eval_commands import add_eval_parser, cmd_eval
from .lab import add_lab_parser, run_lab
from .options import common_options, configure
from .progress import progress_bar

log = logging.getLogger("ragscope")

EXIT_USAGE = 2


def _question_options(parser: argparse.ArgumentParser) -> None:
    """What a subcommand that answers one question takes: the common options, the question, where to look."""
    common_options(parser)
    parser.add_argument("question")
    parser.add_argument("--domain", help="search only this domain (default: all domains)")
    parser.add_argument("--k", type=int, help="how many passages to retrieve (default: retrieval.top_k)")
    parser.add_argument("--no-rag", action="store_true", help="answer from the model's weights alone")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragscope", description="Answer questions from a folder of documents.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ask = commands.add_parser("ask", help="answer one question")
    _question_options(ask)
    ask.add_argument("--mode", choices=RETRIEVAL_MODES, help="dense, bm25 or hybrid (default: retrieval.mode)")
    ask.add_argument(
        "--hops", type=int, choices=HOPS, help="retrieval rounds: 2 searches again for what is missing (multi-hop)"
    )
    ask.add_argument("--json", action="store_true", help="print the whole trace as one JSON object")

    index = commands.add_parser("index", help="bring the stored indexes up to date, print per-domain status")
    common_options(index)
    index.add_argument("--domain", help="only this domain")
    index.add_argument("--rebuild", action="store_true", help="re-read and re-embed every file (ignore the cache)")
    index.add_argument("--json", action="store_true", help="print status as JSON")

    run = commands.add_parser(
        "run", help="run the Discord bot (token from the environment; --role gateway|worker|all, see README)"
    )
    run.add_argument(
        "bot_args", nargs=argparse.REMAINDER, help="options for the bot: --role, --config, --knowledge, ..."
    )

    watch = commands.add_parser("watch", help="keep the stored indexes in step with the knowledge folder")
    common_options(watch)
    watch.add_argument("--json", action="store_true", help="one JSON object per applied update")

    domains = commands.add_parser("domains", help="list domains with file and passage counts")
    common_options(domains)
    domains.add_argument("--json", action="store_true")

    chat = commands.add_parser("chat", help="interactive session with /ask, /norag and /domain")
    common_options(chat)
    chat.add_argument("--domain", help="start in this domain (default: all domains)")

    pipeline = commands.add_parser("pipeline", help="answer one question and write every step of its pipeline")
    _question_options(pipeline)
    pipeline.add_argument("--no-attention", action="store_true", help="skip the attention heatmap (no 2nd model)")
    pipeline.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the files")

    add_lab_parser(commands)
    add_eval_parser(commands)
    return parser


def _progress(label: str) -> AbstractContextManager[Progress | None]:
    return progress_bar(f"indexing {label}", "passage")


def _ensure_indexed(engine: Engine, domain: str | None) -> None:
    """Index what changed up front, with a progress bar, before a question waits on it."""
    for name in [domain] if domain else engine.domains():
        try:
            with _progress(name) as progress:
                engine.index(name, progress)
        except (KnowledgeFolderReadError, IndexStoreError) as exc:
            # A full disk or an unreadable folder: the question is answered from the last good index (the
            # engine says so in the log, and refuses only when there is none).
            print(f"warning: {name} is not up to date: {exc}", file=sys.stderr)


def cmd_ask(args: argparse.Namespace, engine: Engine) -> int:
    # Refuse bad input before any model is loaded or index built.
    query = engine.check(args.question, args.domain, args.k, args.mode, args.hops)
    if not args.no_rag:
        # The models load in the background: the embedder while the indexes are read, the generator (started by
        # `answer`) while the question is embedded and searched. Not the generator yet: llama.cpp's load silences
        # stdout and stderr for a moment, and the header and any indexing warning are printed before `answer`.
        engine.load_embedder_in_background()
        _ensure_indexed(engine, args.domain)
    stream = None if args.json else _print_piece
    if stream:
        print(render.header(args.domain, not args.no_rag, generator_name(engine.config)), flush=True)
    answer = engine.answer(query, use_rag=not args.no_rag, on_token=stream)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        if not answer.covered:
            print(render.not_covered(answer), end="")
        print("\n")
        checked = render.check(answer)
        if checked:
            print(checked + "\n")
        print(render.sources(answer))
        if answer.rounds:
            print(render.rounds(answer))
        print(render.timings(answer))
    return 0


def _print_piece(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


def cmd_index(args: argparse.Namespace, engine: Engine) -> int:
    names = [engine.check_domain(args.domain)] if args.domain else engine.domains()
    rows = []
    for name in names:
        with _progress(name) as progress:
            update = engine.index(name, progress, full=args.rebuild)
        rows.append((engine.domain_stats(name), update))
    if args.json:
        domains = [{**stats.to_dict(), "update": update.to_dict()} for stats, update in rows]
        print(json.dumps({"domains": domains}, ensure_ascii=False, indent=2))
    else:
        print(render.domain_stats([stats for stats, _ in rows]))
        for _, update in rows:
            if update.applied:
                print(render.update_line(update))
    return 0


def cmd_domains(args: argparse.Namespace, engine: Engine) -> int:
    stats = []
    for name in engine.domains():
        with _progress(name) as progress:
            stats.append(engine.domain_stats(name, progress))
    if args.json:
        print(json.dumps({"domains": [s.to_dict() for s in stats]}, ensure_ascii=False, indent=2))
    else:
        print(render.domain_stats(stats, verbose=False))
    return 0


def cmd_chat(args: argparse.Namespace, engine: Engine) -> int:
    from .chat import ChatSession

    engine.load_embedder_in_background()  # while the user types the first question
    return ChatSession(engine, args.domain, _ensure_indexed).run(sys.stdin, sys.stdout)


def cmd_watch(args: argparse.Namespace, engine: Engine) -> int:
    from .watch import run_watch

    return run_watch(engine, json_lines=args.json)


def cmd_pipeline(args: argparse.Namespace, engine: Engine) -> int:
    from .pipeline import run_pipeline

    return run_pipeline(args, engine, _ensure_indexed)


def cmd_lab(args: argparse.Namespace, engine: Engine) -> int:
    return run_lab(args, engine, _ensure_indexed)


COMMANDS: dict[str, Callable[[argparse.Namespace, Engine], int]] = {
    "ask": cmd_ask,
    "index": cmd_index,
    "domains": cmd_domains,
    "chat": cmd_chat,
    "watch": cmd_watch,
    "pipeline": cmd_pipeline,
    "lab": cmd_lab,
    "eval": cmd_eval,
}


def main(argv: Sequence[str] | None = None, make_engine: Callable[[Config], Engine] = Engine) -> int:
    """Run one command; `make_engine` is the seam tests use to swap in small fake models."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["run"]:  # the bot has its own options, logging and error boundary
        from bot.app import main as run_bot

        return run_bot(arguments[1:])
    args = build_parser().parse_args(arguments)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        engine = make_engine(configure(args))
        return COMMANDS[args.command](args, engine)
    except RagError as exc:
        log.debug("command failed", exc_info=True)
        # The reason may name a file or a folder: escaped, so a name cannot write escape codes to the terminal.
        print(f"ragscope: error: {display_name(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
