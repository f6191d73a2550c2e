"""The folder boundary: what the knowledge folder holds, listed and read without ever leaving it.

Nothing outside the resolved knowledge folder is ever listed or read. Symlinks are followed only when their fully
resolved target is inside it; a link leading outside, nowhere or in a loop is skipped with a reason naming it,
and every read is checked again at the moment the file is opened (`ConfinedPath`). Folders nested deeper than
`MAX_FOLDER_DEPTH`, and folders that lead back to one above them, are skipped too. A folder that cannot be listed
raises `KnowledgeFolderReadError`: a partial listing would read as deleted files.

`domain_folders` lists the domains, `walk_domain` one domain's candidate files; both list folders through the
`scandir` they are given (the knowledge store's, which tests replace to make a folder fail as the OS would).
Not here: what is done with the files (`incremental.py`), the snapshots and logging what was skipped
(`knowledge.py`), which files are candidates (`loading.is_candidate`).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PosixPath

from rag_engine.config import LoadingConfig
from rag_engine.errors import KnowledgeFolderError, KnowledgeFolderReadError, SymlinkError
from rag_engine.ingest.incremental import Scan
from rag_engine.ingest.loading import is_candidate

# Folders nested deeper than this below a domain folder are skipped with a reason. No document collection
# nests this far; a tree 1,000 deep (a script gone wrong, a hostile upload) would otherwise run past the
# path length limit, and recursive walkers past the stack.
MAX_FOLDER_DEPTH = 32

# How a folder is listed: `os.scandir`, or a stand-in with the same shape.
Scandir = Callable[[str], AbstractContextManager[Iterator[os.DirEntry[str]]]]


def _is_inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def resolve_inside(path: str, root_real: str, shown: str) -> str:
    """`path` with every symlink resolved, if that is inside `root_real` (itself resolved); else a
    `SymlinkError` whose reason names `shown`. FileNotFoundError when it leads nowhere (a broken link, a file
    that is gone): the caller knows which."""
    try:
        real = os.path.realpath(path, strict=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SymlinkError(f"symlink loop: {shown}") from exc
        raise
    if not _is_inside(real, root_real):
        raise SymlinkError(f"symlink to outside the knowledge folder: {shown}")
    return real


class ConfinedPath(PosixPath):
    """A file of a domain whose path is checked again each time it is handed to the OS (`open`, `stat`, anything
    that calls `os.fspath`): resolved, and refused with `SymlinkError` unless the result is still inside the
    knowledge folder. The walk checked it once; this catches a link swapped in between the walk and the read,
    and the loaders need not know (they open what they are given). The OS is handed the resolved path, so what
    was checked is what is opened, short of a folder swapped in the microseconds between the two.
    (POSIX only, like the watcher.)"""

    # Empty on paths derived from this one (`.parent`, `/ name`): those are ordinary paths.
    _root_real: str = ""
    _shown: str = ""

    @classmethod
    def inside(cls, path: str, root_real: str, shown: str) -> ConfinedPath:
        confined = cls(path)
        confined._root_real = root_real
        confined._shown = shown
        return confined

    def __fspath__(self) -> str:
        if not self._root_real:
            return str(self)
        return resolve_inside(str(self), self._root_real, self._shown)


@dataclass
class Walk:
    """What one walk of a domain folder found: candidate files with their stat, and what it did not follow
    (links leading outside, nowhere or in a loop; folders nested too deep), by relative path, with why."""

    # (relative path, where it is, stat): "where" makes the file's `ConfinedPath` when called. Only the files a
    # sync reads need one, and a `Path` per walked file was half the walk of a 5,000-file domain.
    files: list[tuple[str, Callable[[], Path], os.stat_result]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def scan(self) -> Scan:
        """Each file's size and change stamp: the later of its mtime and its ctime. The ctime moves on a `chmod`
        too, so a file that failed as unreadable is read again once its permissions are fixed (its mtime
        alone would never change), and on a copy that kept an old mtime (`cp -p` over a file)."""
        return {
            relative: (info.st_size, max(info.st_mtime_ns, info.st_ctime_ns), where)
            for relative, where, info in self.files
        }


def resolved_root(root: Path) -> str:
    """The knowledge folder with every symlink resolved: the boundary nothing listed or read may cross."""
    if not root.is_dir():
        raise KnowledgeFolderError(f"knowledge folder not found: {root}")
    return os.path.realpath(root)


def domain_folders(root: Path, scandir: Scandir) -> tuple[list[str], dict[str, str]]:
    """The domain folders, in name order: subfolders of the knowledge folder, neither hidden (`.x`) nor set aside
    (`_x`). A symlink counts only if it resolves to a folder inside the knowledge folder; the entries that look
    like domains but are not (links leading outside, nowhere or in a loop) come second, with why."""
    root_real = resolved_root(root)
    try:
        with scandir(root_real) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise KnowledgeFolderError(f"knowledge folder not found: {root}") from exc
    except OSError as exc:
        raise KnowledgeFolderReadError(f"cannot read the knowledge folder {root}: {_why(exc)}") from exc
    names: list[str] = []
    refused: dict[str, str] = {}
    for entry in entries:
        name = entry.name
        if name.startswith((".", "_")):
            continue
        try:
            if entry.is_symlink():
                if os.path.isdir(resolve_inside(entry.path, root_real, name)):
                    names.append(name)
            elif entry.is_dir(follow_symlinks=False):
                names.append(name)
        except SymlinkError as exc:
            refused[name] = str(exc)
        except FileNotFoundError:
            if os.path.lexists(entry.path):  # else: removed since the listing
                refused[name] = f"broken symlink: {name}"
        except OSError as exc:
            refused[name] = f"cannot read {name}: {_why(exc)}"
    return names, refused


def walk_domain(root: Path, domain: str, loading: LoadingConfig, scandir: Scandir) -> Walk:
    """Candidate files of `root / domain` with one `stat` each, and what was not followed. Raises
    `KnowledgeFolderReadError` when a folder cannot be listed: a partial listing would read as deleted files and
    empty the index."""
    root_real = resolved_root(root)
    try:
        top = resolve_inside(str(root / domain), root_real, domain)
        top_info = os.stat(top)
    except (SymlinkError, FileNotFoundError, NotADirectoryError) as exc:
        raise KnowledgeFolderReadError(f"domain folder {domain} is gone or not followed ({exc})") from exc
    root_info = os.stat(root_real)
    walk = Walk()
    confined = ConfinedPath.inside
    # (folder, its relative path with a trailing slash, depth, identities of the folders above it and itself)
    stack = [(top, "", 0, frozenset({_identity(root_info), _identity(top_info)}))]
    while stack:
        folder, prefix, depth, ancestors = stack.pop()
        try:
            with scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except (FileNotFoundError, NotADirectoryError) as exc:
            if not prefix:
                raise KnowledgeFolderReadError(f"domain folder {domain} vanished during the update") from exc
            continue  # removed, or replaced by a file, since its parent was listed: its files are gone
        except OSError as exc:
            where = f"{domain}/{prefix.rstrip('/')}" if prefix else domain
            raise KnowledgeFolderReadError(f"cannot read folder {where}: {_why(exc)}") from exc
        subfolders: list[tuple[str, str, tuple[int, int], bool]] = []
        for entry in entries:
            name, relative = entry.name, prefix + entry.name
            try:
                if entry.is_symlink():
                    if not is_candidate(name, loading):
                        continue
                    try:
                        target = resolve_inside(entry.path, root_real, relative)
                        info = os.stat(target)
                    except SymlinkError as exc:
                        walk.skipped[relative] = str(exc)
                        continue
                    except (FileNotFoundError, NotADirectoryError):
                        if os.path.lexists(entry.path):  # else: removed since the listing
                            walk.skipped[relative] = f"broken symlink: {relative}"
                        continue
                    if stat.S_ISDIR(info.st_mode):
                        subfolders.append((target, relative, _identity(info), True))
                    elif stat.S_ISREG(info.st_mode):
                        walk.files.append((relative, partial(confined, entry.path, root_real, relative), info))
                elif entry.is_dir(follow_symlinks=False):
                    if not name.startswith("."):
                        subfolders.append((entry.path, relative, _identity(entry.stat(follow_symlinks=False)), False))
                elif entry.is_file(follow_symlinks=False) and is_candidate(name, loading):
                    info = entry.stat(follow_symlinks=False)
                    walk.files.append((relative, partial(confined, entry.path, root_real, relative), info))
            except (FileNotFoundError, NotADirectoryError):
                continue  # deleted between the listing and the stat
            except OSError as exc:
                raise KnowledgeFolderReadError(f"cannot read {domain}/{relative}: {_why(exc)}") from exc
        for path, relative, identity, linked in reversed(subfolders):
            if identity in ancestors:  # a link to a folder above (or a bind mount of one): endless
                walk.skipped[relative] = f"{'symlink' if linked else 'folder'} loop: {relative}"
            elif depth + 1 > MAX_FOLDER_DEPTH:
                walk.skipped[relative] = f"folder nested deeper than {MAX_FOLDER_DEPTH} levels: {relative}"
            else:
                stack.append((path, relative + "/", depth + 1, ancestors | {identity}))
    return walk


def _identity(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)
