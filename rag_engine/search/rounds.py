"""Merging the hits of several retrieval rounds (multi-hop answers) into one list, best first.

Each round's distances are to its own query, so they do not compare across rounds: the rounds are interleaved
by rank instead (round 1's best, round 2's best, round 1's second, ...), each passage once, so that the prompt,
which keeps what fits from the front, holds the best of every round. `unseen` keeps a later round from
bringing back what an earlier one already found.

Not here: the searches themselves (`retrieval.py`), the follow-up query (`generate/follow_up.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from itertools import zip_longest
from typing import TypeVar

from rag_engine.records import Hit

T = TypeVar("T")


def hit_key(hit: Hit) -> tuple[str, int]:
    """A passage's identity across domains (ids are per domain)."""
    return hit.domain, hit.passage.id


def unseen(hits: Iterable[Hit], seen: Iterable[Hit], k: int) -> list[Hit]:
    """The first `k` of `hits` whose passage is not among `seen`, ranked again from 1."""
    known = {hit_key(hit) for hit in seen}
    fresh = [hit for hit in hits if hit_key(hit) not in known][:k]
    return [replace(hit, rank=rank) for rank, hit in enumerate(fresh, start=1)]


def interleave(rounds: Sequence[Sequence[T]]) -> list[T]:
    """The rounds' items taken in turn by rank (first of each, then second of each, ...)."""
    return [item for tier in zip_longest(*rounds) for item in tier if item is not None]


def merge_rounds(rounds: Sequence[Sequence[Hit]]) -> list[Hit]:
    """The rounds' hits interleaved by rank, each passage once (the earliest round's hit of it, with that
    round's distance), ranked again from 1."""
    first_found: dict[tuple[str, int], Hit] = {}
    for found in rounds:
        for hit in found:
            first_found.setdefault(hit_key(hit), hit)
    order = dict.fromkeys(hit_key(hit) for hit in interleave(rounds))
    return [replace(first_found[key], rank=rank) for rank, key in enumerate(order, start=1)]
