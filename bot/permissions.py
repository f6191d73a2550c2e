"""Who may change a guild's knowledge (upload files, reindex): one predicate, no Discord calls.

Members with the Manage Server permission (administrators and the owner have it implicitly), or with a role
whose name is listed in `config.bot.knowledge_roles`. A plain `discord.User` is someone in a DM: no guild,
no roles, so never. Role names match exactly (Discord role names are case-sensitive, and a loose match would
let a look-alike role through).

Not here: answering questions (everyone may ask), the refusal message (the knowledge cog).
"""

from __future__ import annotations

from collections.abc import Sequence

import discord


def may_manage_knowledge(member: discord.Member | discord.User, role_names: Sequence[str]) -> bool:
    if isinstance(member, discord.User):
        return False
    if member.guild_permissions.manage_guild:
        return True
    wanted = {name for name in role_names if name}
    return any(role.name in wanted for role in member.roles)
