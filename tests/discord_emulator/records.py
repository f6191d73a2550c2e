"""What the emulator records: messages (with edit history and files), interactions, and the latency summary.

Every change to a record goes through `Notifier.notify()` (notifier.py), which wakes all `wait_for` calls; waits
re-check their condition on each change and never poll with sleeps.

Not here: the notifier and the wait errors (notifier.py), the REST request log and the injected rate-limit and
failure rules (traffic.py). They are re-exported from this module because tests import them from here.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from . import payloads as p
from .notifier import ClientCrashed, EmulatorTimeout, Notifier
from .payloads import Payload
from .traffic import FailureRule, RateLimitRule, RequestRecord, route_matches


@dataclass
class FileRecord:
    """A file attached to a message (sent by the bot or uploaded by a simulated user)."""

    id: str
    filename: str
    data: bytes
    url: str
    content_type: str | None = None
    description: str | None = None
    ephemeral: bool = False
    downloads: int = 0

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")

    def payload(self) -> Payload:
        return p.attachment(
            self.filename,
            self.size,
            self.url,
            id=self.id,
            content_type=self.content_type,
            description=self.description,
            ephemeral=self.ephemeral,
        )


@dataclass
class Revision:
    """One state of a message: the creation, then one per edit."""

    content: str
    embeds: list[Payload]
    components: list[Payload]
    files: list[FileRecord]
    flags: int
    at: float
    source: str  # "create", "edit", "callback" (UPDATE_MESSAGE), "defer"


@dataclass(eq=False)
class MessageRecord:
    """A message in a channel, with its full edit history.

    Bot messages also keep what the bot sent that Discord does not echo: `allowed_mentions` and the raw request
    payload of the last change.
    """

    id: str
    channel_id: str
    guild_id: str | None
    author: Payload
    content: str = ""
    embeds: list[Payload] = field(default_factory=list)
    components: list[Payload] = field(default_factory=list)
    files: list[FileRecord] = field(default_factory=list)
    flags: int = 0
    type: int = p.MESSAGE_DEFAULT
    allowed_mentions: Payload | None = None
    message_reference: Payload | None = None
    referenced_message: Payload | None = None
    interaction_id: str | None = None
    interaction_metadata: Payload | None = None
    webhook_id: str | None = None
    application_id: str | None = None
    nonce: str | int | None = None
    tts: bool = False
    mentions: list[Payload] = field(default_factory=list)
    mention_roles: list[str] = field(default_factory=list)
    mention_everyone: bool = False
    reactions: list[str] = field(default_factory=list)
    timestamp: str = field(default_factory=p.iso_now)
    edited_timestamp: str | None = None
    created_at: float = 0.0
    deleted: bool = False
    revisions: list[Revision] = field(default_factory=list)
    last_request: Payload | None = None

    @property
    def author_id(self) -> str:
        return str(self.author["id"])

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & p.FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        """A deferred interaction response ("Bot is thinking…") that has not been edited yet."""
        return bool(self.flags & p.FLAG_LOADING)

    @property
    def edit_count(self) -> int:
        return sum(1 for revision in self.revisions if revision.source in ("edit", "callback"))

    @property
    def content_history(self) -> list[str]:
        return [revision.content for revision in self.revisions]

    @property
    def edited_at(self) -> list[float]:
        """Loop times of every edit (for throttling assertions)."""
        return [revision.at for revision in self.revisions if revision.source in ("edit", "callback")]

    @property
    def attachments(self) -> list[Payload]:
        return [file.payload() for file in self.files]

    @property
    def buttons(self) -> list[Payload]:
        return [c for c in p.walk_components(self.components) if c.get("type") == p.COMPONENT_BUTTON]

    def find_component(self, custom_id: str) -> Payload | None:
        for component in p.walk_components(self.components):
            if component.get("custom_id") == custom_id:
                return component
        return None

    def file(self, pattern: str = "*") -> FileRecord:
        """The first current file whose name matches the glob `pattern`."""
        for record in self.files:
            if fnmatch.fnmatch(record.filename, pattern):
                return record
        raise LookupError(f"message {self.id} has no file matching {pattern!r}: {[f.filename for f in self.files]}")

    def embed_text(self) -> str:
        """All visible text of the embeds, one piece per line (handy for `in` assertions)."""
        parts: list[str] = []
        for embed in self.embeds:
            parts.extend(str(embed[key]) for key in ("title", "description") if embed.get(key))
            parts.extend(f"{f.get('name', '')}\n{f.get('value', '')}" for f in embed.get("fields", []))
            for key in ("footer", "author"):
                sub = embed.get(key) or {}
                text = sub.get("text") or sub.get("name")
                if text:
                    parts.append(str(text))
        return "\n".join(parts)

    def summary(self) -> str:
        content = self.content if len(self.content) <= 80 else self.content[:77] + "..."
        extras = []
        if self.embeds:
            extras.append(f"{len(self.embeds)} embed(s)")
        if self.files:
            extras.append("files=" + ",".join(f.filename for f in self.files))
        if self.components:
            extras.append("components")
        if self.loading:
            extras.append("loading")
        if self.ephemeral:
            extras.append("ephemeral")
        if self.deleted:
            extras.append("deleted")
        tail = f" [{'; '.join(extras)}]" if extras else ""
        return f"#{self.channel_id} {self.author.get('username')}: {content!r}{tail}"


@dataclass(eq=False)
class InteractionRecord:
    """One interaction the emulator dispatched and everything the bot answered to it."""

    id: str
    token: str
    type: int
    name: str  # command name ("group sub" for subcommands) or custom_id
    user: Payload
    channel_id: str
    guild_id: str | None
    payload: Payload
    created_at: float
    deadline: float
    notifier: Notifier = field(repr=False)
    acknowledged_at: float | None = None
    response_type: int | None = None
    response_data: Payload | None = None
    original: MessageRecord | None = None
    followups: list[MessageRecord] = field(default_factory=list)
    choices: list[Payload] | None = None
    modal: Payload | None = None
    expired: bool = False
    rejected: list[tuple[int, int]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    last_activity_at: float | None = None

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    @property
    def ack_latency(self) -> float | None:
        """Seconds from dispatch to the accepted first callback."""
        return None if self.acknowledged_at is None else self.acknowledged_at - self.created_at

    @property
    def completion_latency(self) -> float | None:
        """Seconds from dispatch to the last accepted callback/webhook request (edit, followup)."""
        return None if self.last_activity_at is None else self.last_activity_at - self.created_at

    @property
    def deferred(self) -> bool:
        return self.response_type in (p.CALLBACK_DEFERRED_CHANNEL_MESSAGE, p.CALLBACK_DEFERRED_UPDATE_MESSAGE)

    @property
    def messages(self) -> list[MessageRecord]:
        """The original response (if any) followed by the followups."""
        return ([self.original] if self.original is not None else []) + self.followups

    @property
    def files(self) -> list[FileRecord]:
        return [file for message in self.messages for file in message.files]

    async def wait_acknowledged(self, timeout: float = 5.0) -> InteractionRecord:
        """Wait for the first callback; fails if the 3 s deadline passes first."""
        await self.notifier.wait_for(
            lambda: self.acknowledged or self.expired, timeout, f"interaction {self.name!r} to be acknowledged"
        )
        if not self.acknowledged:
            raise AssertionError(f"interaction {self.name!r} missed the acknowledgement deadline: {self.violations}")
        return self

    async def wait_response_done(
        self, predicate: Callable[[MessageRecord], bool] | None = None, timeout: float = 10.0
    ) -> MessageRecord:
        """Wait until the original response exists, is no longer "thinking", and satisfies `predicate`."""

        def check() -> MessageRecord | None:
            message = self.original
            if message is None or message.loading:
                return None
            return message if predicate is None or predicate(message) else None

        return await self.notifier.wait_for(check, timeout, f"the response to {self.name!r} to be done")

    async def wait_for_edit(self, count: int = 1, timeout: float = 10.0) -> MessageRecord:
        """Wait until the original response has been edited at least `count` times."""

        def check() -> MessageRecord | None:
            message = self.original
            return message if message is not None and message.edit_count >= count else None

        return await self.notifier.wait_for(check, timeout, f"{count} edit(s) of the response to {self.name!r}")

    async def wait_for_followup(
        self, predicate: Callable[[MessageRecord], bool] | None = None, timeout: float = 10.0
    ) -> MessageRecord:
        """Wait for the first followup satisfying `predicate`."""

        def check() -> MessageRecord | None:
            for message in self.followups:
                if predicate is None or predicate(message):
                    return message
            return None

        return await self.notifier.wait_for(check, timeout, f"a followup to {self.name!r}")

    async def wait_for_choices(self, timeout: float = 5.0) -> list[Payload]:
        """Wait for the autocomplete result."""
        return await self.notifier.wait_for(lambda: self.choices, timeout, f"autocomplete choices for {self.name!r}")

    async def wait_rejected(self, timeout: float = 10.0) -> tuple[int, int]:
        """Wait until a callback/webhook request of this interaction is refused; returns (status, code)."""
        return await self.notifier.wait_for(
            lambda: self.rejected[0] if self.rejected else None, timeout, f"a refused request for {self.name!r}"
        )

    def summary(self) -> str:
        state = "acknowledged" if self.acknowledged else "expired" if self.expired else "pending"
        latency = f" in {self.ack_latency:.3f}s" if self.ack_latency is not None else ""
        return f"interaction {self.id} {self.name!r} type={self.type} {state}{latency} response={self.response_type}"


@dataclass(frozen=True)
class Metrics:
    """Latency summary over all interactions (for load tests)."""

    interactions: int
    acknowledged: int
    expired: int
    ack_latencies: list[float]
    completion_latencies: list[float]
    requests: int
    rate_limited: int
    violations: int

    @staticmethod
    def percentile(values: list[float], q: float) -> float | None:
        """Nearest-rank percentile (q in 0..100) or None without data."""
        if not values:
            return None
        ordered = sorted(values)
        rank = min(len(ordered), max(1, math.ceil(q / 100 * len(ordered))))
        return ordered[rank - 1]

    @property
    def ack_p50(self) -> float | None:
        return self.percentile(self.ack_latencies, 50)

    @property
    def ack_p95(self) -> float | None:
        return self.percentile(self.ack_latencies, 95)

    @property
    def ack_max(self) -> float | None:
        return max(self.ack_latencies, default=None)

    @property
    def completion_p50(self) -> float | None:
        return self.percentile(self.completion_latencies, 50)

    @property
    def completion_p95(self) -> float | None:
        return self.percentile(self.completion_latencies, 95)

    @property
    def completion_max(self) -> float | None:
        return max(self.completion_latencies, default=None)


__all__ = [
    "ClientCrashed",
    "EmulatorTimeout",
    "FailureRule",
    "FileRecord",
    "InteractionRecord",
    "MessageRecord",
    "Metrics",
    "Notifier",
    "RateLimitRule",
    "RequestRecord",
    "Revision",
    "route_matches",
]
