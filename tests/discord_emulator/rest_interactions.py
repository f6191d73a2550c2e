"""REST routes of interactions: the first response (`/interactions/{id}/{token}/callback`, with the deadline,
double-acknowledgement and callback-type checks) and the webhook routes for followups and edits of responses.

Not here: creating the interactions a user triggers and their deadline timers (interactions.py), the routes
that need the bot token (rest_guild.py, rest_channels.py), and the route table (rest.py).
"""

from __future__ import annotations

from typing import Any

from . import payloads as p
from . import rules
from .payloads import Payload
from .records import InteractionRecord, MessageRecord
from .rest_base import NO_CONTENT, ApiError, ApiRequest, RouteHandlers, check_message

# Callback types each interaction type accepts.
_ALLOWED_CALLBACKS = {
    p.INTERACTION_APPLICATION_COMMAND: {
        p.CALLBACK_CHANNEL_MESSAGE,
        p.CALLBACK_DEFERRED_CHANNEL_MESSAGE,
        p.CALLBACK_MODAL,
    },
    p.INTERACTION_MESSAGE_COMPONENT: {
        p.CALLBACK_CHANNEL_MESSAGE,
        p.CALLBACK_DEFERRED_CHANNEL_MESSAGE,
        p.CALLBACK_DEFERRED_UPDATE_MESSAGE,
        p.CALLBACK_UPDATE_MESSAGE,
        p.CALLBACK_MODAL,
    },
    p.INTERACTION_AUTOCOMPLETE: {p.CALLBACK_AUTOCOMPLETE_RESULT},
    p.INTERACTION_MODAL_SUBMIT: {
        p.CALLBACK_CHANNEL_MESSAGE,
        p.CALLBACK_DEFERRED_CHANNEL_MESSAGE,
        p.CALLBACK_DEFERRED_UPDATE_MESSAGE,
        p.CALLBACK_UPDATE_MESSAGE,
    },
}


class InteractionRoutes(RouteHandlers):
    """Handlers for interaction callbacks and interaction webhooks (mixed into `RestApi`)."""

    async def interaction_callback(self, request: ApiRequest) -> Any:
        emu = self.emu
        interaction = emu.interactions_by_id.get(request.params["interaction_id"])
        if interaction is None or interaction.token != request.params["token"]:
            raise ApiError(404, rules.error_body(rules.ERROR_UNKNOWN_INTERACTION, "Unknown interaction"))
        now = emu.loop.time()
        label = f"interaction {interaction.name!r}"
        if interaction.acknowledged:
            raise ApiError(
                400,
                rules.error_body(rules.ERROR_ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged."),
                violation=f"{label} was answered twice: 400 Interaction has already been acknowledged (40060)",
                interaction=interaction,
            )
        if interaction.expired or now > interaction.deadline:
            emu.expire(interaction)
            raise ApiError(
                404,
                rules.error_body(rules.ERROR_UNKNOWN_INTERACTION, "Unknown interaction"),
                violation=(
                    f"{label}: first response {now - interaction.created_at:.2f}s after dispatch "
                    f"(deadline {emu.ack_deadline:g}s): 404 Unknown interaction (10062)"
                ),
                interaction=interaction,
            )
        body = request.json
        callback_type = body.get("type")
        data = body.get("data") or {}
        if callback_type not in _ALLOWED_CALLBACKS.get(interaction.type, set()):
            error = rules.FieldError(
                ("type",), "INTERACTION_CALLBACK_TYPE_INVALID", "Invalid callback type for this interaction"
            )
            raise ApiError(
                400,
                rules.invalid_form_body([error]),
                violation=f"{label}: callback type {callback_type} is invalid for interaction type {interaction.type}",
                interaction=interaction,
            )
        where = f"{request.route} ({label}, type {callback_type})"
        channel = emu.find_channel(interaction.channel_id)
        assert channel is not None
        message: MessageRecord | None = None
        if callback_type == p.CALLBACK_CHANNEL_MESSAGE:
            files = self.new_files(data, request.parts, interaction.channel_id, where, interaction)
            check_message(data, len(files), ("data",), where, interaction)
            message = emu.create_bot_message(
                channel, data, files, where=where, interaction=interaction, flags=int(data.get("flags") or 0)
            )
        elif callback_type == p.CALLBACK_DEFERRED_CHANNEL_MESSAGE:
            flags = p.FLAG_LOADING | (int(data.get("flags") or 0) & p.FLAG_EPHEMERAL)
            message = emu.create_bot_message(channel, {}, [], where=where, interaction=interaction, flags=flags)
        elif callback_type in (p.CALLBACK_DEFERRED_UPDATE_MESSAGE, p.CALLBACK_UPDATE_MESSAGE):
            message = emu.messages.get(str(interaction.payload.get("message", {}).get("id")))
            if message is None:
                raise ApiError(404, rules.error_body(rules.ERROR_UNKNOWN_MESSAGE, "Unknown Message"))
            if callback_type == p.CALLBACK_UPDATE_MESSAGE:
                files = self.new_files(data, request.parts, message.channel_id, where, interaction)
                emu.edit_bot_message(message, data, files, where=where, interaction=interaction, prefix=("data",))
        elif callback_type == p.CALLBACK_AUTOCOMPLETE_RESULT:
            errors = rules.validate_choices(data.get("choices"))
            if errors:
                raise ApiError(
                    400,
                    rules.invalid_form_body(errors),
                    violation=f"{where} rejected (400 50035): " + "; ".join(e.describe() for e in errors),
                    interaction=interaction,
                )
            interaction.choices = list(data["choices"])
        elif callback_type == p.CALLBACK_MODAL:
            interaction.modal = data
        interaction.acknowledged_at = now
        interaction.last_activity_at = emu.loop.time()
        interaction.response_type = callback_type
        interaction.response_data = body
        if message is not None:
            interaction.original = message
        info: Payload = {"id": interaction.id, "type": interaction.type}
        resource: Payload = {"type": callback_type}
        if message is not None:
            info.update(
                response_message_id=message.id,
                response_message_loading=message.loading,
                response_message_ephemeral=message.ephemeral,
            )
            resource["message"] = emu.message_payload(message)
        return {"interaction": info, "resource": resource}

    def _webhook_interaction(self, request: ApiRequest) -> InteractionRecord:
        emu = self.emu
        interaction = emu.interactions_by_token.get(request.params["token"])
        unknown = rules.error_body(rules.ERROR_UNKNOWN_WEBHOOK, "Unknown Webhook")
        if interaction is None or request.params["application_id"] != emu.application_id:
            raise ApiError(404, unknown)
        label = f"interaction {interaction.name!r}"
        if emu.loop.time() - interaction.created_at > emu.token_lifetime:
            raise ApiError(
                404,
                unknown,
                violation=f"{request.route}: the token of {label} expired ({emu.token_lifetime:g}s)",
                interaction=interaction,
            )
        if not interaction.acknowledged:
            violation = None
            if not interaction.expired:
                violation = f"{request.route}: {label} used before its first response: 404 Unknown Webhook (10015)"
            raise ApiError(404, unknown, violation=violation, interaction=interaction)
        return interaction

    def _webhook_message(self, request: ApiRequest, interaction: InteractionRecord) -> MessageRecord:
        message_id = request.params["message_id"]
        if message_id == "@original":
            message = interaction.original
        else:
            message = next((m for m in interaction.messages if m.id == message_id), None)
        if message is None or message.deleted:
            raise ApiError(404, rules.error_body(rules.ERROR_UNKNOWN_MESSAGE, "Unknown Message"))
        return message

    async def followup(self, request: ApiRequest) -> Any:
        emu = self.emu
        interaction = self._webhook_interaction(request)
        body = request.json
        where = f"{request.route} (followup to interaction {interaction.name!r})"
        files = self.new_files(body, request.parts, interaction.channel_id, where, interaction)
        check_message(body, len(files), (), where, interaction)
        channel = emu.find_channel(interaction.channel_id)
        assert channel is not None
        message = emu.create_bot_message(
            channel, body, files, where=where, interaction=interaction, flags=int(body.get("flags") or 0), followup=True
        )
        interaction.followups.append(message)
        interaction.last_activity_at = emu.loop.time()
        if request.query.get("wait", "").lower() in ("1", "true"):
            return emu.message_payload(message)
        return NO_CONTENT

    async def get_webhook_message(self, request: ApiRequest) -> Any:
        interaction = self._webhook_interaction(request)
        return self.emu.message_payload(self._webhook_message(request, interaction))

    async def edit_webhook_message(self, request: ApiRequest) -> Any:
        interaction = self._webhook_interaction(request)
        message = self._webhook_message(request, interaction)
        where = f"{request.route} (interaction {interaction.name!r})"
        files = self.new_files(request.json, request.parts, message.channel_id, where, interaction)
        self.emu.edit_bot_message(message, request.json, files, where=where, interaction=interaction)
        interaction.last_activity_at = self.emu.loop.time()
        return self.emu.message_payload(message)

    async def delete_webhook_message(self, request: ApiRequest) -> Any:
        interaction = self._webhook_interaction(request)
        self.emu.delete_message(self._webhook_message(request, interaction))
        interaction.last_activity_at = self.emu.loop.time()
        return NO_CONTENT
