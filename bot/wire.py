"""The engine's records as JSON and back, whole: what crosses Redis between the gateway and its workers.

A worker answers a question and the gateway renders that answer exactly as the single process does (the
sources embed, the support check, the buttons, the pipeline view later), so the whole `Answer` trace has to
arrive, not the `to_dict()` summary of `ragscope ask --json` (which leaves out passage ids, lines and the
question's vector). `to_json` writes any frozen record (`dataclasses.asdict`: nested records become objects,
tuples lists); `from_json(cls, text)` rebuilds `cls` from its field types: nested records, `tuple[X, ...]`,
`X | None`, plain dicts and scalars, which is all the records use. `from_json(cls, to_json(record)) ==
record` holds for every record (floats survive JSON exactly; tests check it on real answers).

Not here: which records are sent when (`bot.redis_queue`, `bot.worker`).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, TypeVar, Union

R = TypeVar("R")


class WireFormatError(ValueError):
    """A message that is not the JSON of the record it should be (a newer or older peer, or garbage)."""


def to_json(record: object) -> str:
    """The record (a dataclass instance) as one JSON object."""
    if not dataclasses.is_dataclass(record) or isinstance(record, type):
        raise TypeError(f"not a record: {record!r}")
    return json.dumps(dataclasses.asdict(record), ensure_ascii=False, separators=(",", ":"))


def from_json(cls: type[R], text: str | bytes) -> R:
    """Rebuild a `cls` record from `to_json`'s text; `WireFormatError` if it does not fit."""
    try:
        raw = json.loads(text)
        value: R = _decode(cls, raw)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise WireFormatError(f"not a {cls.__name__}: {exc}") from exc
    return value


def _decode(kind: Any, raw: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        if raw is None:
            return None
        options = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return _decode(options[0], raw)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        return tuple(_decode(item, element) for element in raw)
    if origin is dict:
        key, item = typing.get_args(kind)
        return {_decode(key, k): _decode(item, v) for k, v in raw.items()}
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        hints = typing.get_type_hints(kind)
        fields = dataclasses.fields(kind)
        return kind(**{f.name: _decode(hints[f.name], raw[f.name]) for f in fields if f.name in raw})
    if kind is float:
        return float(raw)  # JSON writes 1.0 as 1.0, but a peer may not
    if kind in (int, str, bool) and not isinstance(raw, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(raw).__name__}")
    return raw
