"""An answer worker process for the end-to-end tests: `python -m tests.bot.redis_worker CONFIG --name N`.

It is `ragscope run --role worker` (`bot.worker.run_worker`: the same loop, signals and Redis client) over
the small fake models of tests/fakes.py, so it starts in a second. Its generator is EchoGenerator with two
additions the tests need: it counts its generations in Redis (`<queue>:generated:<name>`), so a test can tell
that every question was generated once and by which worker; and an answer to a question that contains
`HOLD` stops after its first piece until the test pushes to `<queue>:release` (a worker the test can kill
mid-answer). `--token-seconds` makes it a slow model (a pause after each piece).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from bot.config import bot_config
from bot.worker import run_worker
from rag_engine.config import load_config
from rag_engine.engine import Engine
from tests.fakes import EchoGenerator, HashingEmbedder

HOLD = "HOLD"
HOLD_SECONDS = 30


class WorkerGenerator(EchoGenerator):
    def __init__(self, client: redis.Redis, queue_name: str, worker: str, token_seconds: float) -> None:
        super().__init__()
        self.client = client
        self.counter = f"{queue_name}:generated:{worker}"
        self.release = f"{queue_name}:release"
        self.token_seconds = token_seconds

    def stream(self, prompt: str, max_tokens: int, context: str = "") -> Iterator[str]:
        self.client.incr(self.counter)
        for index, piece in enumerate(super().stream(prompt, max_tokens, context)):
            yield piece
            if index == 0 and HOLD in prompt:
                # A latch: whoever gets the release puts it back for the next one.
                if self.client.blpop([self.release], timeout=HOLD_SECONDS):
                    self.client.lpush(self.release, "go")
            elif self.token_seconds:
                time.sleep(self.token_seconds)  # a slow model, not a wait for anything


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--token-seconds", type=float, default=0.0)
    args = parser.parse_args()
    config = load_config(args.config).with_paths(data_dir=args.data_dir)
    settings = bot_config(config)
    url = os.environ[settings.redis_url_env]
    counter = redis.Redis.from_url(url, decode_responses=True)
    generator = WorkerGenerator(counter, settings.queue_name, args.name, args.token_seconds)
    engine = Engine(config, embedder=HashingEmbedder, generator=lambda: generator)
    run_worker(config, settings, url, engine=engine, name=args.name)


if __name__ == "__main__":
    main()
