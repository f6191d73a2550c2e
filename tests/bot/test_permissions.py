"""may_manage_knowledge: Manage Server or a listed role; DMs never. Stand-ins for members (real ones need
connection state); a real `discord.User` for the DM case."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import discord

from bot.permissions import may_manage_knowledge

ROLES = ("Knowledge Editor", "Librarian")


def member(*role_names: str, manage_guild: bool = False) -> Any:
    return SimpleNamespace(
        guild_permissions=discord.Permissions(manage_guild=manage_guild),
        roles=[SimpleNamespace(name=name) for name in ("@everyone", *role_names)],
    )


def test_manage_server_is_enough() -> None:
    assert may_manage_knowledge(member(manage_guild=True), ROLES)
    assert may_manage_knowledge(member(manage_guild=True), [])


def test_administrators_have_manage_server() -> None:
    # discord.py's Member.guild_permissions expands Administrator (and guild ownership) to every permission.
    admin: Any = SimpleNamespace(guild_permissions=discord.Permissions.all(), roles=[])
    assert may_manage_knowledge(admin, ROLES)


def test_a_listed_role_is_enough() -> None:
    assert may_manage_knowledge(member("Moderator", "Librarian"), ROLES)
    assert may_manage_knowledge(member("Knowledge Editor"), ROLES)


def test_everyone_else_is_refused() -> None:
    assert not may_manage_knowledge(member(), ROLES)
    assert not may_manage_knowledge(member("Moderator"), ROLES)
    assert not may_manage_knowledge(member("knowledge editor"), ROLES)  # role names are case-sensitive
    assert not may_manage_knowledge(member("Knowledge Editor"), [])
    assert not may_manage_knowledge(member(""), [""])  # an empty entry in the config matches nothing


def test_a_user_in_a_dm_is_refused() -> None:
    user = discord.User(
        state=None,  # type: ignore[arg-type]
        data={"id": "1", "username": "someone", "discriminator": "0", "avatar": None, "global_name": None},
    )
    assert not may_manage_knowledge(user, ROLES)
