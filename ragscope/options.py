"""The options every `ragscope` subcommand shares (config file, knowledge and data folders, `--set`, `-v`), and
the `Config` they make.

Here, not in `cli.py`, so that the `eval` subcommands (`eval_*.py`), which `cli.py` imports, can add the same
options without importing `cli.py` back.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rag_engine.config import Config, load_config, with_overrides


def common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="config file (default: $RAGSCOPE_CONFIG or ./config.toml)")
    parser.add_argument("--knowledge", type=Path, metavar="DIR", help="knowledge folder (one subfolder per domain)")
    parser.add_argument("--data-dir", type=Path, metavar="DIR", help="where indexes are stored")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one setting of the config file, e.g. --set evidence.sentences=false (repeatable)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")


def configure(args: argparse.Namespace) -> Config:
    """The config file with the `--set` overrides and the folder options applied."""
    config = with_overrides(load_config(args.config), getattr(args, "set", []))
    return config.with_paths(knowledge_dir=args.knowledge, data_dir=args.data_dir)
