"""A loopback Discord emulator for tests: the unmodified discord.py client talks to it over real sockets.

Public API: `DiscordEmulator` (server.py), the records it keeps (records.py), payload factories (payloads.py),
the rules it enforces (rules.py) and `running_bot` / the `emulator` fixture (fixtures.py).
"""

from __future__ import annotations

from .fixtures import running_bot
from .payloads import FileUpload
from .records import (
    ClientCrashed,
    EmulatorTimeout,
    FileRecord,
    InteractionRecord,
    MessageRecord,
    Metrics,
    RequestRecord,
    Revision,
)
from .server import DiscordEmulator

__all__ = [
    "ClientCrashed",
    "DiscordEmulator",
    "EmulatorTimeout",
    "FileRecord",
    "FileUpload",
    "InteractionRecord",
    "MessageRecord",
    "Metrics",
    "RequestRecord",
    "Revision",
    "running_bot",
]
