"""Typed errors of the engine, all under one `RagError`.

Each surface (CLI, Discord) translates them once into a short sentence for the user; the traceback goes to
the log. Nothing here logs or formats for a particular surface.
"""

from __future__ import annotations


class RagError(Exception):
    """Base of every error the engine raises on purpose; `str(err)` is the user-facing reason."""


class ConfigError(RagError):
    """config.toml is missing a value, has a wrong type, or names something that does not exist."""


class KnowledgeFolderError(RagError):
    """The knowledge folder is missing or is not a folder."""


class UnknownDomainError(RagError):
    """The asked-for domain is not a subfolder of the knowledge folder."""

    def __init__(self, domain: str, known: list[str]) -> None:
        choices = ", ".join(known) if known else "none"
        super().__init__(f"unknown domain {domain!r} (known: {choices})")
        self.domain = domain
        self.known = known


class QuestionError(RagError):
    """The question is empty, too long, or leaves no room in the prompt."""


class DocumentError(RagError):
    """One document is not indexed on purpose (unsupported, binary, empty, too large); a skip reason."""


class DocumentReadError(DocumentError):
    """One document should have been indexed but could not be read or parsed (corrupt, vanished, no access);
    reported as *failed* rather than *skipped*, and retried when the file changes."""


class FileAccessError(DocumentReadError):
    """The file is there but the operating system refuses to read it (permissions, an I/O error): unlike a
    corrupt file, an indexed one keeps its last good passages until it can be read again."""


class ModelError(RagError):
    """A model could not be found or loaded."""


class ModelServerError(ModelError):
    """No model server of the pool could answer (each one down, refusing, or timed out), or the one streaming
    an answer failed after its first token had reached the user (the answer is then cut, never restarted).
    `str(err)` names the servers and why, never the API key."""


class IndexStoreError(RagError):
    """A stored index is unreadable or was made with other settings."""


class KnowledgeFolderReadError(KnowledgeFolderError):
    """The knowledge folder, a domain folder or one of its subfolders is there but cannot be listed (no
    permission, an I/O error). A sync that meets one applies nothing: the last good index stays in use."""


class SymlinkError(DocumentError):
    """A symlink in the knowledge folder that is not followed: it leads outside the (resolved) knowledge folder,
    nowhere, or round in a loop. Nothing behind it is read; the reason names the link."""


class AttentionUnavailable(RagError):
    """The configured generation model cannot give attention weights (unreadable by transformers, a missing
    package, or no weights returned); `str(err)` says why. The pipeline view shows the reason instead."""


class PipelineOutputError(RagError):
    """The pipeline view's files could not be written (no such folder, no permission, disk full)."""


class BeirDataError(RagError):
    """The folder is not in BEIR format: a file is missing, a line is not JSON, or the split has no qrels."""


class QuestionsFileError(RagError):
    """A domain's questions.jsonl is missing, unreadable, or has a line that is not a question record."""


class SquadError(RagError):
    """The SQuAD file cannot be read or is not in SQuAD format, or the knowledge folder holds other files."""


class SnapshotReplacedError(IndexStoreError):
    """The indexer committed a newer snapshot of a domain while a question was being answered from the old one
    (pgvector: the table has moved on). Asking again answers from the new snapshot; the engine does so itself."""
