"""Grounding marks: which generated tokens also occur in the retrieved context.

Works on words, not raw tokens, because the model's tokens are sub-word pieces (" Bei" + "jing"): a token is
marked when it is part of a word that occurs in the context. Very common function words are never marked,
so the highlight points at content (names, figures, terms), not at "the".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag_engine.records import AnswerToken

_WORD = re.compile(r"[^\W_]+(?:[.,'’][^\W_]+)*", re.UNICODE)
_FUNCTION_WORDS = frozenset(
    """a an the and or but of in on at to for from by with as is are was were be been being it
    its this that these those which who whom what when where how than then there their they he
    she his her we you i not no do does did has have had will would can could may might shall
    should""".split()  # noqa: SIM905
)


def words(text: str) -> set[str]:
    return {match.group(0).lower() for match in _WORD.finditer(text)}


def mark_tokens(tokens: Sequence[str], context: str) -> tuple[AnswerToken, ...]:
    """One `AnswerToken` per generated token; `in_context` when it belongs to a context word."""
    known = words(context) - _FUNCTION_WORDS
    text = "".join(tokens)
    # Character mask over the answer: True where a context word sits.
    mask = [False] * len(text)
    for match in _WORD.finditer(text):
        if match.group(0).lower() in known:
            mask[match.start() : match.end()] = [True] * (match.end() - match.start())
    marked: list[AnswerToken] = []
    position = 0
    for token in tokens:
        span = mask[position : position + len(token)]
        marked.append(AnswerToken(token, any(span)))
        position += len(token)
    return tuple(marked)
