"""Safe display of file names (and text taken from files): backslash escapes for what a screen or UTF-8 cannot take.

A POSIX file name is bytes; Python hands the bytes that are not UTF-8 to us as lone surrogates (surrogateescape),
which cannot be encoded as UTF-8 at all, so printing or JSON-encoding such a name raises. A name may also hold
control characters: an ANSI escape that recolours or clears a terminal, a tab or newline that fakes another line of
output, a bidirectional override that shows "evil\\u202egpj.md" as "evildm.jpg". `display_name` writes all of those
as backslash escapes (`caf\\xe9.md`, `a\\x1b[31mred.md`, `tab\\there.md`); letters of any script, accents and emoji
pass unchanged. `utf8_name` escapes only the lone surrogates: for JSON, whose own escaping already makes control
characters harmless.

Not here: deciding what to do with such a file (loading refuses a name that is not UTF-8), Markdown escaping for
Discord (`bot/render/`).
"""

from __future__ import annotations

import re

# C0 and C1 controls and DEL, lone surrogates, the line/paragraph separators (a line break to some renderers), and
# the bidirectional marks, embeddings, overrides and isolates (they reorder what is shown after them).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the original byte of an undecodable name
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def display_name(name: str) -> str:
    """`name` with control characters, lone surrogates and bidirectional controls as backslash escapes: safe to
    print on a terminal, to send to Discord and to encode as UTF-8. Unchanged (the same object) when already safe."""
    return _UNSAFE.sub(_escape, name) if _UNSAFE.search(name) else name


def utf8_name(name: str) -> str:
    """`name` with only its lone surrogates escaped (`\\xe9` for an undecodable byte): encodable as UTF-8."""
    return _SURROGATE.sub(_escape, name) if _SURROGATE.search(name) else name


def is_utf8_name(name: str) -> bool:
    """False when `name` came from bytes that are not UTF-8 (it holds lone surrogates)."""
    return _SURROGATE.search(name) is None
