"""The waiting layer of `DiscordEmulator` (see base.py for the layers): the await-able helpers
(`wait_for_message`, `wait_for_edit`, `wait_for_request`, ...), each a condition over the records, re-checked by
the notifier on every recorded change.

Not here: the notifier itself and its timeout/crash errors (notifier.py), and the per-interaction waits
(`InteractionRecord.wait_*`, records.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .interactions import InteractionsLayer
from .payloads import Payload
from .records import FileRecord, MessageRecord
from .traffic import RequestRecord, route_matches
from .world import ChannelRef, MessageRef


class WaitingLayer(InteractionsLayer):
    """Wait helpers of `DiscordEmulator`."""

    async def wait_for(self, check: Callable[[], Any], timeout: float = 10.0, what: str = "a condition") -> Any:
        """Await the first truthy (not None/False) result of `check()`, re-evaluated on every recorded change."""
        return await self.notifier.wait_for(check, timeout, what)

    async def wait_until_ready(self, timeout: float = 10.0) -> None:
        """Until the emulator has sent READY and GUILD_CREATE to an identified bot."""
        await self.notifier.wait_for(lambda: self.gateway.ready_sent, timeout, "the bot to IDENTIFY")

    async def wait_for_message(
        self,
        channel_id: ChannelRef = None,
        predicate: Callable[[MessageRecord], bool] | None = None,
        *,
        timeout: float = 10.0,
        from_bot: bool = True,
        after: MessageRef | None = None,
    ) -> MessageRecord:
        """The first message (oldest first) in the channel (any channel if None) matching `predicate`.

        `channel_id` accepts a channel id, a channel payload or a guild channel name.

        Only the bot's messages unless `from_bot=False`; only messages newer than `after`; "thinking"
        placeholders of deferred interactions are skipped until they are edited.
        """
        wanted = self._channel_id(channel_id)
        after_id = int(self._message(after).id) if after is not None else 0

        def check() -> MessageRecord | None:
            for message in self.messages.values():
                if wanted is not None and message.channel_id != wanted:
                    continue
                if from_bot and message.author_id != self.bot_id:
                    continue
                if int(message.id) <= after_id or message.loading:
                    continue
                if predicate is None or predicate(message):
                    return message
            return None

        where = f"in channel {wanted}" if wanted else "in any channel"
        return await self.notifier.wait_for(check, timeout, f"a message {where}")

    async def wait_for_edit(
        self,
        message: MessageRef,
        predicate: Callable[[MessageRecord], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = 10.0,
    ) -> MessageRecord:
        """Until `message` has been edited at least `count` times and satisfies `predicate`."""
        record = self._message(message)

        def check() -> MessageRecord | None:
            if record.edit_count >= count and (predicate is None or predicate(record)):
                return record
            return None

        return await self.notifier.wait_for(check, timeout, f"{count} edit(s) of message {record.id}")

    async def wait_for_typing(self, channel_id: ChannelRef = None, timeout: float = 10.0) -> float:
        """Until the bot triggered the typing indicator in the channel; returns the loop time."""
        wanted = self._channel_id(channel_id)
        return await self.notifier.wait_for(
            lambda: next((t for c, t in self.typing if wanted is None or c == wanted), None),
            timeout,
            "a typing indicator",
        )

    async def wait_for_request(
        self, pattern: str, *, status: int | None = None, timeout: float = 10.0
    ) -> RequestRecord:
        """The first logged REST request matching `pattern` (and `status`)."""
        return await self.notifier.wait_for(
            lambda: next(
                (
                    r
                    for r in self.requests
                    if route_matches(pattern, r.method, r.path) and (status is None or r.status == status)
                ),
                None,
            ),
            timeout,
            f"a request {pattern}" + (f" answered {status}" if status else ""),
        )

    async def wait_for_violation(self, text: str = "", timeout: float = 10.0) -> str:
        """The first violation containing `text`."""
        return await self.notifier.wait_for(
            lambda: next((v for v in self.violations if text in v), None), timeout, f"a violation containing {text!r}"
        )

    async def wait_for_resume(self, count: int = 1, timeout: float = 10.0) -> None:
        """Until the client has RESUMEd `count` times in total."""
        await self.notifier.wait_for(
            lambda: self.resume_count >= count and self.gateway.connected, timeout, f"{count} RESUME(s)"
        )

    async def wait_for_download(self, file: FileRecord | Payload, timeout: float = 10.0) -> FileRecord:
        """Until the bot downloaded an attachment."""
        record = file if isinstance(file, FileRecord) else self.files[str(file["id"])]
        return await self.notifier.wait_for(
            lambda: record if record.downloads else None, timeout, f"a download of {record.filename}"
        )
