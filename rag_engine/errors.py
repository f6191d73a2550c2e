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


class ModelError(RagError):
    """A model could not be found or loaded."""


class IndexStoreError(RagError):
    """A stored index is unreadable or was made with other settings."""
