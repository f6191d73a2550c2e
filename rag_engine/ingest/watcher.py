"""The watcher: file events in the knowledge folder → debounced, incremental updates of the affected domains.

watchdog's observer thread only marks domains dirty (it never indexes); one worker thread waits until the
folder has been quiet for `rebuild_debounce_seconds` (or `max_rebuild_delay_seconds` have passed since the
burst began), then syncs each dirty domain and reports every applied `IndexUpdate` to `on_update`, from the
worker thread. Crossing into asyncio is the caller's business (the bot uses `loop.call_soon_threadsafe`).
What an update does is `knowledge.py`'s and `incremental.py`'s business.

Events are a hint, not the truth: a sync compares the folder with the index by stat, so a missed or merged
event costs nothing as long as one event per burst reaches the domain.

The observer watches one folder (an inode), not a path: when the knowledge folder is removed and made again,
or moved away and replaced, it would watch nothing forever. So the worker also checks, on the root's own
deletion event and every `ROOT_CHECK_SECONDS`, that the folder at the path is still the one observed and the
observer still runs; if not, it observes the new folder, syncs every domain and logs that it did.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path, PurePath
from types import TracebackType
from typing import Any

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from rag_engine.config import LoadingConfig, WatchConfig
from rag_engine.ingest.knowledge import KnowledgeBase
from rag_engine.ingest.loading import is_candidate
from rag_engine.records import IndexUpdate

log = logging.getLogger(__name__)

# Opening and reading a file (which indexing itself does) must not count as a change.
_CHANGE_EVENTS = frozenset(
    (EVENT_TYPE_CREATED, EVENT_TYPE_DELETED, EVENT_TYPE_MODIFIED, EVENT_TYPE_MOVED, EVENT_TYPE_CLOSED)
)

UpdateSink = Callable[[IndexUpdate], None]
ErrorSink = Callable[[str, Exception], None]

# How often the worker makes sure it still observes the folder at the knowledge path (one `stat`): what finds
# a folder made again after it vanished, since nothing observes a folder that does not exist yet.
ROOT_CHECK_SECONDS = 1.0


def affected_domain(root: Path, path: str, is_directory: bool, loading: LoadingConfig) -> str | None:
    """The domain a changed path belongs to, or None if the change cannot matter to any index: hidden
    files and folders, editor temp and backup files, unsupported types, files outside a domain folder."""
    try:
        parts = PurePath(path).relative_to(root).parts
    except ValueError:
        return None
    if not parts or parts[0].startswith((".", "_")):
        return None
    if len(parts) == 1:
        return parts[0] if is_directory else None  # a domain folder itself appeared or went away
    if any(part.startswith(".") for part in parts[1:-1]):
        return None
    if is_directory:
        return None if parts[-1].startswith(".") else parts[0]  # a subfolder moved in or out carries files
    name = PurePath(parts[-1])
    # `foo.md.swp`, `#foo.md#`, `4913`, `foo.md~`, `.foo.md.tmp`: none has a supported suffix or is a candidate.
    if name.suffix.lower() not in loading.extensions or not is_candidate(name.name, loading):
        return None
    return parts[0]


class _Events(FileSystemEventHandler):
    def __init__(
        self, root: Path, loading: LoadingConfig, mark: Callable[[set[str]], None], root_gone: Callable[[], None]
    ) -> None:
        self._root = root
        self._loading = loading
        self._mark = mark
        self._root_gone = root_gone

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _CHANGE_EVENTS:
            return
        if event.event_type in (EVENT_TYPE_DELETED, EVENT_TYPE_MOVED) and self._is_root(event.src_path):
            self._root_gone()  # the observer's last event: what it watched is no longer the knowledge folder
            return
        # A folder's own "modified" event only repeats what its files' events say.
        if event.is_directory and event.event_type in (EVENT_TYPE_MODIFIED, EVENT_TYPE_CLOSED):
            return
        paths = [event.src_path, event.dest_path] if event.event_type == EVENT_TYPE_MOVED else [event.src_path]
        domains = set()
        for raw in paths:
            path = raw.decode() if isinstance(raw, bytes) else raw
            domain = affected_domain(self._root, path, event.is_directory, self._loading)
            if domain is not None:
                domains.add(domain)
        if domains:
            self._mark(domains)

    def _is_root(self, raw: bytes | str) -> bool:
        path = raw.decode() if isinstance(raw, bytes) else raw
        return os.path.normpath(path) == os.path.normpath(self._root)


class KnowledgeWatcher:
    """Keeps a `KnowledgeBase` in step with its folder while running (`start`/`stop`, or `with`)."""

    def __init__(
        self,
        knowledge: KnowledgeBase,
        on_update: UpdateSink,
        config: WatchConfig,
        on_error: ErrorSink | None = None,
    ) -> None:
        self.knowledge = knowledge
        self._on_update = on_update
        self._on_error = on_error
        self._debounce_seconds = config.rebuild_debounce_seconds
        self._max_delay_seconds = config.max_rebuild_delay_seconds
        self._wake = threading.Condition()
        self._dirty: set[str] = set()
        self._first_event = 0.0
        self._last_event = 0.0
        self._stopping = False
        self._observer: Any = None
        self._worker: threading.Thread | None = None
        self._observed: tuple[int, int] | None = None  # (st_dev, st_ino) of the folder the observer watches
        self._root_event = False  # the observer saw the knowledge folder itself deleted or moved
        self._root_missing = False  # said once per absence, not at every check

    def start(self, initial_sync: bool = True) -> KnowledgeWatcher:
        """Start observing, then (optionally) sync every domain, reporting what changed while not watching.
        The observer starts first, so a change made during that first sync is not missed."""
        self.knowledge.domain_names()  # a missing folder is an error here, not in the observer thread
        self._observer = self._observe()
        self.knowledge.watched = True
        if initial_sync:
            self._apply(set(self.knowledge.domain_names()) | self.knowledge.known_domains())
        self._worker = threading.Thread(target=self._run, name="ragscope-watcher", daemon=True)
        self._worker.start()
        return self

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        # The worker first: it is the one that may replace the observer.
        if self._worker is not None:
            self._worker.join()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join()
        self.knowledge.watched = False

    def __enter__(self) -> KnowledgeWatcher:
        return self if self._observer is not None else self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _mark(self, domains: set[str]) -> None:
        """Observer thread: note the domains and when; the worker decides when to act."""
        with self._wake:
            now = time.monotonic()
            if not self._dirty:
                self._first_event = now
            self._dirty |= domains
            self._last_event = now
            self._wake.notify_all()

    def _root_gone(self) -> None:
        """Observer thread: the watched folder itself was deleted or moved; the worker checks at once."""
        with self._wake:
            self._root_event = True
            self._wake.notify_all()

    def _next_burst(self) -> set[str] | None:
        """Block until a burst of events is over (its domains), or the root is due a check (an empty set); None
        when stopping."""
        with self._wake:
            check_at = time.monotonic() + ROOT_CHECK_SECONDS
            while not self._stopping:
                now = time.monotonic()
                if self._root_event or now >= check_at:
                    self._root_event = False
                    return set()
                if not self._dirty:
                    self._wake.wait(check_at - now)
                    continue
                due = min(self._last_event + self._debounce_seconds, self._first_event + self._max_delay_seconds)
                if due <= now:
                    burst, self._dirty = self._dirty, set()
                    return burst
                self._wake.wait(min(due, check_at) - now)
            return None

    def _run(self) -> None:
        while (burst := self._next_burst()) is not None:
            if not burst:
                if self._root_replaced():
                    self._observe_again()
                continue
            self._apply(burst)

    def _observe(self) -> Any:
        """A started observer on the folder now at the knowledge path (remembered by inode)."""
        root = self.knowledge.root
        info = os.stat(root)  # before scheduling: a folder swapped in between is found by the next check
        observer = Observer()
        handler = _Events(root, self.knowledge.config.loading, self._mark, self._root_gone)
        observer.schedule(handler, str(root), recursive=True)
        observer.start()
        self._observed = (info.st_dev, info.st_ino)
        return observer

    def _root_replaced(self) -> bool:
        """True when the folder at the knowledge path is not the one observed, or the observer stopped (it does
        when what it watched is deleted, even if a new folder took the same inode number)."""
        root = self.knowledge.root
        try:
            info = os.stat(root)
        except OSError:
            info = None
        if info is None or not stat.S_ISDIR(info.st_mode):
            if not self._root_missing:
                self._root_missing = True
                log.warning("the knowledge folder %s is gone; the indexes stay as they are until it is back", root)
            return False
        observer = self._observer
        emitters = observer.emitters.copy() if observer is not None else set()  # a copy: its thread changes the set
        observing = observer is not None and observer.is_alive() and bool(emitters)
        observing = observing and all(emitter.is_alive() for emitter in emitters)
        return (info.st_dev, info.st_ino) != self._observed or not observing

    def _observe_again(self) -> None:
        """Observe the new knowledge folder, then sync every domain (old and new): what changed while nothing
        was observed is reported like any update."""
        root = self.knowledge.root
        try:
            observer = self._observe()
        except OSError as exc:  # gone again already: the next check tries again
            log.warning("could not watch the knowledge folder %s: %s", root, exc)
            return
        previous, self._observer = self._observer, observer
        if previous is not None:
            previous.stop()
            previous.join()
        self._root_missing = False
        log.warning("the knowledge folder %s was replaced: watching the new one, syncing every domain", root)
        try:
            present = set(self.knowledge.domain_names())
        except Exception as exc:
            self._report_error("*", exc)
            return
        self._apply(present | self.knowledge.known_domains())

    def _apply(self, domains: set[str]) -> None:
        """Sync each domain (or forget it, if its folder is gone); one failure never stops the watcher."""
        try:
            present = set(self.knowledge.domain_names())
        except Exception as exc:  # the knowledge folder itself vanished: keep the indexes, wait for it
            self._report_error("*", exc)
            return
        known = self.knowledge.known_domains()
        for domain in sorted(domains):
            try:
                if domain in present:
                    update = self.knowledge.sync(domain)
                elif domain in known:
                    update = self.knowledge.forget(domain)
                else:
                    continue
            except Exception as exc:  # logged with its traceback and reported; the watcher keeps serving
                self._report_error(domain, exc)
                continue
            if update.applied:
                try:
                    self._on_update(update)
                except Exception as exc:  # a broken listener (a closed pipe) must not stop the indexing
                    self._report_error(domain, exc)

    def _report_error(self, domain: str, exc: Exception) -> None:
        log.error("could not update %s", domain, exc_info=exc)
        if self._on_error is not None:
            try:
                self._on_error(domain, exc)
            except Exception:
                log.exception("the error listener failed too")
