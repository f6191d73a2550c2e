"""Who may change a guild's knowledge (upload files, reindex): one predicate, no Discord calls.

Members with the Manage Server permission (administrators and the owner have it implicitly), or with a role
listed in `bot.knowledge_roles` (`BotConfig`). An entry of digits only is a role id (it survives renaming the role,
and a look-alike role with the same name does not match it); anything else is a role name, matched exactly
(Discord role names are case-sensitive, and a loose match would let a look-alike role through). A plain
`discord.User` is someone in a DM: no guild, no roles, so never.

Not here: answering questions (everyone may ask), the refusal message (the knowledge cog).
"""

from __future__ import annotations

from collections.abc import Sequence

import discord


def is_role_id(entry: str) -> bool:
    """A `knowledge_roles` entry that is a role id (a snowflake: ASCII digits only) rather than a name."""
    entry = entry.strip()
    # isascii: str.isdigit also accepts digits of other scripts ("١٢٣"), which int() reads but no id has.
    return entry.isascii() and entry.isdigit()


def may_manage_knowledge(member: discord.Member | discord.User, roles: Sequence[str]) -> bool:
    if isinstance(member, discord.User):
        return False
    if member.guild_permissions.manage_guild:
        return True
    wanted_ids = {int(entry) for entry in roles if is_role_id(entry)}
    wanted_names = {entry for entry in roles if entry and not is_role_id(entry)}
    return any(role.id in wanted_ids or role.name in wanted_names for role in member.roles)
