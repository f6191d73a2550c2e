"""may_manage_knowledge: Manage Server or a listed role (by name or by id); DMs never. Stand-ins for members
(real ones need connection state); a real `discord.User` for the DM case. The role-id path is also driven
through the emulator in test_cogs.py."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import discord

from bot.permissions import is_role_id, may_manage_knowledge

ROLES = ("Knowledge Editor", "Librarian")
EDITOR_ROLE_ID = 112233445566778899


def role_id(name: str) -> int:
    """A stable fake snowflake per role name (ids and names must not coincide for the tests to mean anything)."""
    return EDITOR_ROLE_ID if name == "Editors" else 900_000_000_000_000_000 + sum(map(ord, name))


def member(*role_names: str, manage_guild: bool = False) -> Any:
    return SimpleNamespace(
        guild_permissions=discord.Permissions(manage_guild=manage_guild),
        roles=[SimpleNamespace(name=name, id=role_id(name)) for name in ("@everyone", *role_names)],
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


def test_a_listed_role_id_is_enough_whatever_the_role_is_called() -> None:
    by_id = (str(EDITOR_ROLE_ID),)
    assert may_manage_knowledge(member("Editors"), by_id)
    assert may_manage_knowledge(member("Editors"), (f" {EDITOR_ROLE_ID} ", "Librarian"))  # spaces around it
    assert may_manage_knowledge(member("Librarian"), (str(EDITOR_ROLE_ID), "Librarian"))  # names still work


def test_an_id_entry_matches_no_role_by_name_and_a_name_matches_no_id() -> None:
    # A role *called* like the listed id is a look-alike, not the role.
    assert not may_manage_knowledge(member(str(EDITOR_ROLE_ID)), (str(EDITOR_ROLE_ID),))
    assert not may_manage_knowledge(member("Moderator"), (str(role_id("Librarian")),))
    assert not may_manage_knowledge(member("Editors"), ("Knowledge Editor",))


def test_what_counts_as_an_id() -> None:
    assert is_role_id("112233445566778899") and is_role_id(" 42 ")
    assert not is_role_id("Knowledge Editor") and not is_role_id("") and not is_role_id("12a")
    assert not is_role_id("١٢٣")  # Arabic-Indic digits: str.isdigit says yes, a snowflake never has them


def test_a_user_in_a_dm_is_refused() -> None:
    user = discord.User(
        state=None,  # type: ignore[arg-type]
        data={"id": "1", "username": "someone", "discriminator": "0", "avatar": None, "global_name": None},
    )
    assert not may_manage_knowledge(user, ROLES)
