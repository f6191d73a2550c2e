"""The world layer of `DiscordEmulator` (see base.py for the layers): users, channels, roles and DMs, looked up by
name, id or payload, and changed while the bot runs (with the gateway events Discord would send).

Also the reference types the user actions accept (`UserRef`, `ChannelRef`, `MessageRef`, `Upload`) and the guard
that user actions need an identified bot. Not here: the guild's data and permission arithmetic (state.py),
messages (messages.py) and interactions (interactions.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from . import payloads as p
from .base import EmulatorBase
from .payloads import FileUpload, Payload
from .records import MessageRecord

# What user actions accept for users, channels, messages and attachments: a payload/record, or a name or id.
UserRef = Payload | str | None
ChannelRef = Payload | str | None
MessageRef = MessageRecord | str
Upload = FileUpload | tuple[str, bytes] | tuple[str, bytes, str]


class WorldLayer(EmulatorBase):
    """Users, channels, roles and DMs of `DiscordEmulator`."""

    def get_user(self, name: str) -> Payload:
        """A user by username (the defaults are "owner", the `usernames`, and the bot's name)."""
        if name == self.bot_user["username"]:
            return self.bot_user
        return self.users[name]

    def get_channel(self, name: str) -> Payload:
        """A guild text channel by name."""
        return self.guild.channel_named(name)

    def get_role(self, name: str) -> Payload:
        return self.guild.role_named(name)

    def find_user(self, user_id: str) -> Payload | None:
        if user_id == self.bot_id:
            return self.bot_user
        return next((u for u in self.users.values() if u["id"] == user_id), None)

    def find_channel(self, channel_id: str) -> Payload | None:
        return self.guild.channels.get(channel_id) or self.dm_channels.get(channel_id)

    def dm_channel(self, user: UserRef) -> Payload:
        """The DM channel between the bot and `user` (created on first use)."""
        recipient = self._user(user)
        for channel in self.dm_channels.values():
            if channel["recipients"][0]["id"] == recipient["id"]:
                return channel
        channel = p.dm_channel(recipient)
        self.dm_channels[channel["id"]] = channel
        return channel

    def add_member(self, username: str, *, roles: Sequence[Payload | str] = (), nick: str | None = None) -> Payload:
        """Add a guild member (dispatches GUILD_MEMBER_ADD when connected). Returns the user payload."""
        new_user = p.user(username)
        self.users[username] = new_user
        full = self.guild.add_member(new_user, [self._role(r)["id"] for r in roles], nick)
        self.gateway.dispatch("GUILD_MEMBER_ADD", full | {"guild_id": self.guild.id})
        self.notifier.notify()
        return new_user

    def add_role(self, name: str, permissions: int = 0) -> Payload:
        """Create a role (dispatches GUILD_ROLE_CREATE when connected)."""
        role = self.guild.add_role(name, permissions)
        self.gateway.dispatch("GUILD_ROLE_CREATE", {"guild_id": self.guild.id, "role": role})
        return role

    def set_roles(self, user: UserRef, roles: Sequence[Payload | str]) -> None:
        """Replace a member's roles (dispatches GUILD_MEMBER_UPDATE when connected)."""
        target = self._user(user)
        full = self.guild.members[target["id"]]
        full["roles"] = [self._role(r)["id"] for r in roles]
        self.gateway.dispatch("GUILD_MEMBER_UPDATE", full | {"guild_id": self.guild.id})

    def add_channel(self, name: str) -> Payload:
        """Create a text channel (dispatches CHANNEL_CREATE when connected)."""
        channel = self.guild.add_channel(name)
        self.gateway.dispatch("CHANNEL_CREATE", channel)
        return channel

    def permissions(self, user: UserRef) -> int:
        return self.guild.permissions(self._user(user)["id"])

    def _user(self, ref: UserRef) -> Payload:
        if ref is None:
            return self.default_user
        if isinstance(ref, dict):
            return ref
        found = self.users.get(ref) or self.find_user(ref)
        if found is None:
            raise LookupError(f"unknown user {ref!r}")
        return found

    def _channel(self, ref: ChannelRef) -> Payload:
        if ref is None:
            return self.default_channel
        if isinstance(ref, dict):
            ref = str(ref["id"])
        found = self.find_channel(ref)
        if found is None:
            found = next((c for c in self.guild.channels.values() if c["name"] == ref), None)
        if found is None:
            raise LookupError(f"unknown channel {ref!r}")
        return found

    def _channel_id(self, ref: ChannelRef) -> str | None:
        return None if ref is None else self._channel(ref)["id"]

    def _role(self, ref: Payload | str) -> Payload:
        if isinstance(ref, dict):
            return ref
        return self.guild.roles.get(ref) or self.guild.role_named(ref)

    def _require_session(self) -> None:
        if self.gateway.session is None:
            raise RuntimeError("no bot has identified with the emulator yet (start the bot and wait for ready)")
