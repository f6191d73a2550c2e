"""The interactions layer of `DiscordEmulator` (see base.py for the layers): what a simulated user triggers
(slash commands, autocomplete, button clicks, select menus), dispatched as INTERACTION_CREATE with a record to
await, and the first-response deadline (a timer per interaction, `expire` when it passes unanswered).

Not here: checking options against the declared commands (commands.py) and the bot's callbacks and webhook
requests (rest_interactions.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import payloads as p
from .commands import CommandsLayer
from .payloads import Payload
from .records import InteractionRecord
from .world import ChannelRef, MessageRef, UserRef


class InteractionsLayer(CommandsLayer):
    """User-triggered interactions of `DiscordEmulator` and their deadlines."""

    def _new_interaction(self, payload: Payload, name: str, user: Payload, channel: Payload) -> InteractionRecord:
        now = self.loop.time()
        record = InteractionRecord(
            id=payload["id"],
            token=payload["token"],
            type=payload["type"],
            name=name,
            user=user,
            channel_id=channel["id"],
            guild_id=channel.get("guild_id"),
            payload=payload,
            created_at=now,
            deadline=now + self.ack_deadline,
            notifier=self.notifier,
        )
        self.interactions.append(record)
        self.interactions_by_id[record.id] = record
        self.interactions_by_token[record.token] = record
        self._timers.append(self.loop.call_later(self.ack_deadline, self.expire, record))
        self.gateway.dispatch("INTERACTION_CREATE", payload)
        self.notifier.notify()
        return record

    def _envelope(self, user: Payload, channel: Payload) -> dict[str, Any]:
        guild_id = channel.get("guild_id")
        envelope: dict[str, Any] = {
            "application_id": self.application_id,
            "channel": channel,
            "user": user,
            "attachment_size_limit": self.attachment_size_limit,
            "app_permissions": self.guild.permissions(self.bot_id),
        }
        if guild_id:
            full = self.guild.members.get(user["id"])
            if full is None:
                raise LookupError(f"{user['username']} is not a member of the guild")
            envelope.update(guild_id=guild_id, member=full, member_permissions=self.guild.permissions(user["id"]))
        return envelope

    def expire(self, interaction: InteractionRecord) -> None:
        """Mark an interaction as past its first-response deadline (once; records the violation)."""
        if interaction.expired or interaction.acknowledged:
            return
        interaction.expired = True
        kind = {p.INTERACTION_AUTOCOMPLETE: "autocomplete", p.INTERACTION_MESSAGE_COMPONENT: "component"}.get(
            interaction.type, "command"
        )
        self.violate(
            f"interaction {interaction.name!r} ({kind}) was not acknowledged within {self.ack_deadline:g}s "
            "(Discord shows 'The application did not respond')",
            interaction,
        )

    async def invoke_command(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        user: UserRef = None,
        channel: ChannelRef = None,
        *,
        subcommand: str | None = None,
        group: str | None = None,
    ) -> InteractionRecord:
        """A user runs a slash command (INTERACTION_CREATE type 2); returns the record to await on.

        `name` may include the subcommand ("knowledge upload") or group and subcommand ("a b c"). Option values:
        str/int/float/bool; users, channels and roles as payloads or names; attachments as `FileUpload` or
        `(filename, bytes)`. If the bot synced the command, its declaration decides option types, guild scope and
        the command id, and unknown/missing options or invalid choices raise ValueError.
        """
        self._require_session()
        base, subcommand, group = self._split_name(name, subcommand, group)
        invoker, target = self._user(user), self._channel(channel)
        built, resolved, command_id, command_guild_id = self._build_options(
            base, options or {}, subcommand, group, target
        )
        payload = p.slash_command_interaction(
            base,
            options=built,
            resolved=resolved,
            command_id=command_id,
            command_guild_id=command_guild_id,
            **self._envelope(invoker, target),
        )
        full_name = " ".join(part for part in (base, group, subcommand) if part)
        return self._new_interaction(payload, full_name, invoker, target)

    async def start_autocomplete(
        self,
        name: str,
        focused: str,
        value: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: UserRef = None,
        channel: ChannelRef = None,
        subcommand: str | None = None,
        group: str | None = None,
    ) -> InteractionRecord:
        """A user types `value` into option `focused` (INTERACTION_CREATE type 4); returns the record."""
        self._require_session()
        base, subcommand, group = self._split_name(name, subcommand, group)
        invoker, target = self._user(user), self._channel(channel)
        values = dict(options or {})
        values[focused] = value
        built, _, command_id, command_guild_id = self._build_options(
            base, values, subcommand, group, target, focused=focused
        )
        payload = p.autocomplete_interaction(
            base,
            options=built,
            command_id=command_id,
            command_guild_id=command_guild_id,
            **self._envelope(invoker, target),
        )
        full_name = " ".join(part for part in (base, group, subcommand) if part)
        return self._new_interaction(payload, full_name, invoker, target)

    async def autocomplete(
        self,
        name: str,
        focused: str,
        value: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: UserRef = None,
        channel: ChannelRef = None,
        subcommand: str | None = None,
        group: str | None = None,
        timeout: float = 5.0,
    ) -> list[Payload]:
        """Dispatch an autocomplete interaction and await the bot's choices (`[{"name", "value"}, ...]`)."""
        record = await self.start_autocomplete(
            name, focused, value, options, user=user, channel=channel, subcommand=subcommand, group=group
        )
        return await record.wait_for_choices(timeout)

    async def click_button(self, message: MessageRef, custom_id: str, user: UserRef = None) -> InteractionRecord:
        """A user clicks a button of a message (INTERACTION_CREATE type 3 with the full message)."""
        return await self._component(message, custom_id, user, p.COMPONENT_BUTTON, None)

    async def choose(
        self, message: MessageRef, custom_id: str, values: Sequence[str], user: UserRef = None
    ) -> InteractionRecord:
        """A user picks `values` in a string select menu (INTERACTION_CREATE type 3)."""
        return await self._component(message, custom_id, user, p.COMPONENT_STRING_SELECT, values)

    async def _component(
        self, ref: MessageRef, custom_id: str, user: UserRef, kind: int, values: Sequence[str] | None
    ) -> InteractionRecord:
        self._require_session()
        message = self._message(ref)
        component = message.find_component(custom_id)
        if component is None:
            raise ValueError(f"message {message.id} has no component {custom_id!r}: {message.summary()}")
        if component.get("type") != kind:
            raise ValueError(f"component {custom_id!r} has type {component.get('type')}, not {kind}")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        if message.deleted:
            raise ValueError(f"message {message.id} was deleted")
        if values is not None:
            offered = [option.get("value") for option in component.get("options") or []]
            if offered and not set(values) <= set(offered):
                raise ValueError(f"{sorted(set(values) - set(offered))} are not options of {custom_id!r}: {offered}")
            low, high = component.get("min_values", 1), component.get("max_values", 1)
            if not low <= len(values) <= high:
                raise ValueError(f"select {custom_id!r} takes {low}..{high} values, got {len(values)}")
        invoker = self._user(user)
        channel = self._channel(message.channel_id)
        payload = p.component_interaction(
            message=self.message_payload(message),
            custom_id=custom_id,
            component_type=kind,
            values=values,
            **self._envelope(invoker, channel),
        )
        return self._new_interaction(payload, custom_id, invoker, channel)
