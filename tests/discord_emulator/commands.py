"""The commands layer of `DiscordEmulator` (see base.py for the layers): the registry the bot syncs its
application commands to (global and guild scope), and turning a test's option values into the options of an
invocation, checked against what the bot declared.

Not here: the REST routes that sync commands (rest_guild.py) and dispatching the interaction (interactions.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import payloads as p
from .messages import MessagesLayer
from .payloads import FileUpload, Payload, Resolved


class CommandsLayer(MessagesLayer):
    """The command registry and option building of `DiscordEmulator`."""

    def command_registry(self, guild_id: str | None) -> dict[str, Payload]:
        """Registered commands keyed by "type:name" (global when `guild_id` is None)."""
        if guild_id is None:
            return self.global_commands
        return self.guild_commands.setdefault(guild_id, {})

    def store_commands(self, guild_id: str | None, commands: list[Payload], *, replace: bool) -> list[Payload]:
        registry = self.command_registry(guild_id)
        stored: dict[str, Payload] = {} if replace else dict(registry)
        for command in commands:
            key = f"{command.get('type', 1)}:{command['name']}"
            previous = registry.get(key)
            entry: Payload = {
                "type": 1,
                "description": "",
                "options": [],
                "default_member_permissions": None,
                "dm_permission": True,
                "nsfw": False,
            } | dict(command)
            entry.update(id=previous["id"] if previous else p.next_id(), application_id=self.application_id)
            entry["version"] = p.next_id()
            if guild_id is not None:
                entry["guild_id"] = guild_id
            stored[key] = entry
        registry.clear()
        registry.update(stored)
        self.command_syncs.append((guild_id, list(stored.values())))
        self.notifier.notify()
        return list(stored.values()) if replace else [stored[f"{c.get('type', 1)}:{c['name']}"] for c in commands]

    def find_command(self, name: str) -> tuple[Payload, bool] | None:
        """The registered slash command `name` and whether it is guild-scoped (guild commands win)."""
        key = f"1:{name}"
        if key in self.guild_commands.get(self.guild.id, {}):
            return self.guild_commands[self.guild.id][key], True
        if key in self.global_commands:
            return self.global_commands[key], False
        return None

    @staticmethod
    def _split_name(name: str, subcommand: str | None, group: str | None) -> tuple[str, str | None, str | None]:
        parts = name.split()
        if len(parts) == 3:
            return parts[0], parts[2], parts[1]
        if len(parts) == 2:
            return parts[0], parts[1], group
        return name, subcommand, group

    def _declared_options(self, command: Payload, subcommand: str | None, group: str | None) -> list[Payload]:
        options: list[Payload] = command.get("options") or []
        for wanted, kind in ((group, p.OPTION_SUB_COMMAND_GROUP), (subcommand, p.OPTION_SUB_COMMAND)):
            if wanted is None:
                continue
            found = next((o for o in options if o["name"] == wanted and o["type"] == kind), None)
            if found is None:
                raise ValueError(f"/{command['name']} has no {'group' if kind == 2 else 'subcommand'} {wanted!r}")
            options = found.get("options") or []
        if any(o["type"] in (p.OPTION_SUB_COMMAND, p.OPTION_SUB_COMMAND_GROUP) for o in options):
            raise ValueError(f"/{command['name']} needs a subcommand (and group): {[o['name'] for o in options]}")
        return options

    def _option_value(self, option_type: int, value: Any, channel_id: str) -> Any:
        if option_type == p.OPTION_ATTACHMENT:
            if isinstance(value, dict):
                return value
            return self._upload(channel_id, value, ephemeral=True).payload()
        if option_type == p.OPTION_USER and isinstance(value, str):
            return self._user(value)
        if option_type == p.OPTION_CHANNEL and isinstance(value, str):
            return self._channel(value)
        if option_type == p.OPTION_ROLE and isinstance(value, str):
            return self._role(value)
        if isinstance(value, FileUpload | tuple):
            return self._upload(channel_id, value, ephemeral=True).payload()
        return value

    def _build_options(
        self,
        name: str,
        values: Mapping[str, Any],
        subcommand: str | None,
        group: str | None,
        channel: Payload,
        *,
        focused: str | None = None,
    ) -> tuple[list[Payload], Resolved, str | None, str | None]:
        found = self.find_command(name)
        declared: dict[str, Payload] = {}
        command_id = command_guild_id = None
        if found is not None:
            command, guild_scoped = found
            command_id = command["id"]
            command_guild_id = self.guild.id if guild_scoped else None
            declared = {o["name"]: o for o in self._declared_options(command, subcommand, group)}
            unknown = set(values) - set(declared)
            if unknown:
                raise ValueError(f"/{name} has no option(s) {sorted(unknown)}; declared: {sorted(declared)}")
            missing = [n for n, o in declared.items() if o.get("required") and n not in values]
            if missing and focused is None:
                raise ValueError(f"/{name} requires option(s) {missing}")
            if focused is not None and not declared.get(focused, {}).get("autocomplete"):
                raise ValueError(f"option {focused!r} of /{name} does not use autocomplete")
        resolved = Resolved()
        options = []
        for option_name, raw in values.items():
            declaration = declared.get(option_name, {})
            option_type = declaration.get("type")
            if option_type is None:
                option_type = p.OPTION_ATTACHMENT if isinstance(raw, FileUpload | tuple) else None
            if option_name == focused:
                option_type = option_type or p.OPTION_STRING
                options.append(p.command_option(option_name, raw, resolved, type=option_type, focused=True))
                continue
            choices = declaration.get("choices")
            if choices and raw not in [c["value"] for c in choices]:
                raise ValueError(f"{raw!r} is not a choice of {option_name!r}: {[c['value'] for c in choices]}")
            value = self._option_value(option_type or 0, raw, channel["id"])
            options.append(
                p.command_option(
                    option_name,
                    value,
                    resolved,
                    type=option_type,
                    members=self.guild.members,
                    member_permissions=self.guild.permissions,
                )
            )
        return p.nest_options(options, subcommand=subcommand, group=group), resolved, command_id, command_guild_id
