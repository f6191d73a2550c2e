"""The emulated world: one guild with roles, text channels and members, plus DM channels.

Permissions are computed like Discord's base permissions (owner → all; @everyone | member roles; ADMINISTRATOR →
all). Channel permission overwrites are stored and sent but not applied.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from . import payloads as p
from .payloads import Payload


@dataclass
class GuildState:
    """One guild: its payload pieces, kept in sync with what discord.py was told."""

    id: str
    name: str
    owner_id: str
    roles: dict[str, Payload] = field(default_factory=dict)
    channels: dict[str, Payload] = field(default_factory=dict)
    members: dict[str, Payload] = field(default_factory=dict)

    @classmethod
    def create(cls, name: str, owner: Payload, everyone_permissions: int) -> GuildState:
        guild_id = p.next_id()
        state = cls(id=guild_id, name=name, owner_id=owner["id"])
        state.roles[guild_id] = p.everyone_role(guild_id, everyone_permissions)
        state.members[owner["id"]] = p.member(owner)
        return state

    def payload(self) -> Payload:
        """The GUILD_CREATE payload (member_count == len(members))."""
        return p.guild(
            id=self.id,
            name=self.name,
            owner_id=self.owner_id,
            roles=list(self.roles.values()),
            channels=list(self.channels.values()),
            members=list(self.members.values()),
        )

    def permissions(self, user_id: str) -> int:
        """Base guild permissions of a member."""
        if user_id == self.owner_id:
            return p.ALL_PERMISSIONS
        value = int(self.roles[self.id]["permissions"])
        member = self.members.get(user_id)
        for role_id in member["roles"] if member else []:
            role = self.roles.get(role_id)
            if role is not None:
                value |= int(role["permissions"])
        if value & p.PERM_ADMINISTRATOR:
            return p.ALL_PERMISSIONS
        return value

    def add_role(self, name: str, permissions: int = 0, **options: bool | int) -> Payload:
        position = max((int(r["position"]) for r in self.roles.values()), default=0) + 1
        role = p.role(self.id, name, permissions=permissions, position=position, **options)  # type: ignore[arg-type]
        self.roles[role["id"]] = role
        return role

    def role_named(self, name: str) -> Payload:
        for role in self.roles.values():
            if role["name"] == name:
                return role
        raise LookupError(f"no role named {name!r}")

    def add_member(self, user: Payload, roles: Iterable[str] = (), nick: str | None = None) -> Payload:
        member = p.member(user, roles=roles, nick=nick)
        self.members[user["id"]] = member
        return member

    def add_channel(self, name: str, **options: str | int | None) -> Payload:
        position = len(self.channels)
        channel = p.text_channel(self.id, name, position=position, **options)  # type: ignore[arg-type]
        self.channels[channel["id"]] = channel
        return channel

    def channel_named(self, name: str) -> Payload:
        for channel in self.channels.values():
            if channel["name"] == name:
                return channel
        raise LookupError(f"no channel named {name!r}")
