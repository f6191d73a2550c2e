"""Saving a file uploaded through Discord into a domain folder, safely.

The attachment's name comes from the uploader, so it is reduced to a plain base name (no folders, no `..`,
no hidden or editor-scratch names, no control characters) with a supported extension. The bytes are written
to a hidden temporary file in the same folder, fsynced, then moved into place in one step, so the knowledge
watcher (which ignores hidden files) never indexes a half-written document. Existing files are only
replaced when the uploader asked for it.

Not here: who may upload (`bot.permissions`), downloading the attachment, waiting for the index update.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from bot.errors import UploadError

MAX_NAME_CHARS = 100
# Most file systems cap a name at 255 bytes; stay well below it for multi-byte names.
MAX_NAME_BYTES = 200
# Invisible characters that reorder displayed text: a name could look unlike what it is (another extension).
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _supported(extensions: Sequence[str]) -> list[str]:
    return sorted({("." + ext.lstrip(".")).lower() for ext in extensions if ext.strip(".")})


def safe_filename(name: str, extensions: Sequence[str]) -> str:
    """The uploader's file name reduced to a safe base name inside a domain folder, or UploadError."""
    if any(unicodedata.category(char) == "Cc" or char in _BIDI_CONTROLS for char in name):
        raise UploadError("the file name contains control characters")
    # Both separators: a name from a Windows client can carry backslashes; only the last part is a name.
    base = re.split(r"[/\\]", unicodedata.normalize("NFC", name))[-1]
    base = " ".join(base.split())
    if not base:
        raise UploadError("the file name is empty")
    if base in (".", ".."):
        raise UploadError(f"{base!r} is not a file name")
    # Hidden and editor-scratch names are invisible to the indexer (see rag_engine.ingest.loading.is_candidate).
    if base.startswith((".", "~")):
        raise UploadError(f"{base!r} is a hidden or temporary name; rename the file")
    supported = _supported(extensions)
    stem, dot, ext = base.rpartition(".")
    suffix = "." + ext.lower() if dot else ""
    if not dot or not stem.strip() or suffix not in supported:
        raise UploadError(f"unsupported file type {suffix or '(none)'} for {base!r}; supported: {', '.join(supported)}")
    # The extension stays whole (lower case, as the loader compares it); the stem gives way to the limits.
    stem = stem.rstrip()
    while stem and (len(stem) + len(suffix) > MAX_NAME_CHARS or len((stem + suffix).encode()) > MAX_NAME_BYTES):
        stem = stem[:-1].rstrip()
    if not stem:
        raise UploadError("the file name is too long")
    return stem + suffix


def _size(n: int) -> str:
    for unit, scale in (("MB", 1_000_000), ("kB", 1_000)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def save_upload(
    folder: Path, name: str, data: bytes, *, replace: bool, max_bytes: int, extensions: Sequence[str]
) -> Path:
    """Write `data` as `folder/<safe name>` atomically and return that path; UploadError when refused."""
    if not folder.is_dir():
        raise UploadError(f"the domain folder {folder.name!r} does not exist")
    if len(data) > max_bytes:
        raise UploadError(f"the file is {_size(len(data))}, over the upload limit of {_size(max_bytes)}")
    filename = safe_filename(name, extensions)
    root = folder.resolve()
    target = root / filename
    # Defence in depth: safe_filename already allows no separators, but a symlink planted in the folder
    # under this name must not redirect the write elsewhere either.
    if target.resolve().parent != root:
        raise UploadError(f"{filename!r} would be saved outside the domain folder")
    if target.is_dir():
        raise UploadError(f"{filename!r} is a folder in this domain")
    if not replace and (target.exists() or target.is_symlink()):
        raise UploadError(f"{filename!r} already exists in this domain; upload again with replace:true to overwrite")

    # Hidden (leading dot) and with a scratch suffix: the watcher ignores it until it becomes `target`.
    fd, temp_name = tempfile.mkstemp(dir=root, prefix=".upload-", suffix=".tmp")
    temp = Path(temp_name)
    try:
        try:
            os.fchmod(fd, 0o644)  # mkstemp makes 0600; a document should be readable like its neighbours
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(temp, target)
        else:
            _link_new(temp, target, filename)
        _fsync_dir(root)
    except OSError as exc:
        raise UploadError(f"could not save {filename!r}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return target


def _link_new(temp: Path, target: Path, filename: str) -> None:
    """Move `temp` to `target` only if `target` does not exist, atomically: a hard link fails on an existing
    name, closing the gap between the exists-check above and the move (two uploads of one name at once)."""
    try:
        os.link(temp, target)
    except FileExistsError as exc:
        raise UploadError(
            f"{filename!r} already exists in this domain; upload again with replace:true to overwrite"
        ) from exc
    except OSError:
        # No hard links on this file system: fall back to check-then-rename (the small race is acceptable).
        if target.exists():
            raise UploadError(
                f"{filename!r} already exists in this domain; upload again with replace:true to overwrite"
            ) from None
        os.replace(temp, target)


def _fsync_dir(folder: Path) -> None:
    """Make the new directory entry durable too (not every platform can open a folder; best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
