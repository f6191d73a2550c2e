"""The bottom layer of `DiscordEmulator`: the state every layer shares and the primitives all of them use.

`DiscordEmulator` (server.py) is one class built from layers, each a class in its own module that builds on the
one below: base.py → world.py → messages.py → commands.py → interactions.py → waiting.py → server.py. A linear
chain rather than independent mixins, so that every layer is type-checked against what it calls below it.

Here: the types of the shared state (assigned in `DiscordEmulator.__init__`), where the emulator serves (`loop`,
URLs), `violate`, and the gateway counters. Not here: the constructor, the lifecycle and the state only the server
uses (server.py), or the actions and waits tests use (the layers above).
"""

from __future__ import annotations

import asyncio
import logging

from .gateway import Gateway
from .notifier import Notifier
from .payloads import Payload
from .records import FileRecord, InteractionRecord, MessageRecord
from .rest_base import API_PREFIX
from .state import GuildState
from .traffic import RequestRecord

# The logger `violate` used when it was defined in server.py; log filters may rely on the name.
log = logging.getLogger(f"{__package__}.server")


class EmulatorBase:
    """State shared by the layers of `DiscordEmulator` (declared here, assigned by its `__init__`) and primitives."""

    ack_deadline: float
    attachment_size_limit: int
    bot_user: Payload
    bot_id: str
    application_id: str
    users: dict[str, Payload]
    guild: GuildState
    default_channel: Payload
    default_user: Payload
    dm_channels: dict[str, Payload]

    messages: dict[str, MessageRecord]
    _channel_messages: dict[str, list[MessageRecord]]
    files: dict[str, FileRecord]
    interactions: list[InteractionRecord]
    interactions_by_id: dict[str, InteractionRecord]
    interactions_by_token: dict[str, InteractionRecord]
    requests: list[RequestRecord]
    typing: list[tuple[str, float]]
    violations: list[str]
    global_commands: dict[str, Payload]
    guild_commands: dict[str, dict[str, Payload]]
    command_syncs: list[tuple[str | None, list[Payload]]]

    notifier: Notifier
    gateway: Gateway
    port: int
    _loop: asyncio.AbstractEventLoop | None
    _timers: list[asyncio.TimerHandle]

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the emulator is not running")
        return self._loop

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    # Here rather than in a layer above: every layer reports broken rules.
    def violate(self, text: str, interaction: InteractionRecord | None = None) -> None:
        """Record a broken Discord rule (tests assert `emu.violations == []`)."""
        log.warning("Discord rule broken: %s", text)
        self.violations.append(text)
        if interaction is not None:
            interaction.violations.append(text)
        self.notifier.notify()

    # Here rather than with the reporting in server.py: `wait_for_resume` (waiting.py) needs `resume_count`.
    @property
    def identify_count(self) -> int:
        return len(self.gateway.identifies)

    @property
    def resume_count(self) -> int:
        return sum(1 for event, _ in self.gateway.dispatched if event == "RESUMED")

    @property
    def intents(self) -> int | None:
        """The intents of the last IDENTIFY."""
        return self.gateway.intents
