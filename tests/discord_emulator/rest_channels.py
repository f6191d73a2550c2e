"""REST routes on channels: read, send, edit and delete messages, the typing indicator and the bot's reactions.

Not here: interaction responses and followups, which also create messages (rest_interactions.py); the message
records and their gateway events (messages.py); the route table (rest.py).
"""

from __future__ import annotations

from typing import Any

from . import payloads as p
from . import rules
from .payloads import Payload
from .records import MessageRecord
from .rest_base import NO_CONTENT, ApiError, ApiRequest, RouteHandlers, check_message


class ChannelRoutes(RouteHandlers):
    """Handlers for `/channels/{channel_id}/...` (mixed into `RestApi`)."""

    def _channel(self, request: ApiRequest) -> Payload:
        channel = self.emu.find_channel(request.params["channel_id"])
        if channel is None:
            raise ApiError(404, rules.error_body(rules.ERROR_UNKNOWN_CHANNEL, "Unknown Channel"))
        return channel

    def _message(self, request: ApiRequest) -> MessageRecord:
        channel = self._channel(request)
        message = self.emu.messages.get(request.params["message_id"])
        if message is None or message.deleted or message.channel_id != channel["id"] or message.ephemeral:
            raise ApiError(404, rules.error_body(rules.ERROR_UNKNOWN_MESSAGE, "Unknown Message"))
        return message

    async def get_channel(self, request: ApiRequest) -> Any:
        return self._channel(request)

    async def get_messages(self, request: ApiRequest) -> Any:
        channel = self._channel(request)
        limit = max(1, min(100, int(request.query.get("limit", "50"))))
        before = int(request.query["before"]) if "before" in request.query else None
        after = int(request.query["after"]) if "after" in request.query else None
        found = [
            m
            for m in self.emu.channel_messages(channel["id"])
            if not m.deleted
            and not m.ephemeral
            and (before is None or int(m.id) < before)
            and (after is None or int(m.id) > after)
        ]
        if after is not None:
            found = found[:limit]  # oldest first after `after`, then returned newest first
        else:
            found = found[-limit:]
        return [self.emu.message_payload(m) for m in reversed(found)]

    async def get_message(self, request: ApiRequest) -> Any:
        return self.emu.message_payload(self._message(request))

    async def create_message(self, request: ApiRequest) -> Any:
        channel = self._channel(request)
        body = request.json
        files = self.new_files(body, request.parts, channel["id"], request.route)
        check_message(body, len(files), (), request.route, None)
        reference = body.get("message_reference")
        referenced: MessageRecord | None = None
        if reference and reference.get("message_id"):
            referenced = self.emu.messages.get(str(reference["message_id"]))
            if referenced is None and reference.get("fail_if_not_exists", True):
                error = rules.FieldError(("message_reference",), "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
                raise ApiError(
                    400,
                    rules.invalid_form_body([error]),
                    violation=f"{request.route} rejected (400 50035): {error.describe()}",
                )
        message = self.emu.create_bot_message(
            channel,
            body,
            files,
            where=request.route,
            referenced=referenced,
            flags=int(body.get("flags") or 0) & ~p.FLAG_EPHEMERAL,
        )
        return self.emu.message_payload(message)

    async def edit_message(self, request: ApiRequest) -> Any:
        message = self._message(request)
        if message.author_id != self.emu.bot_id:
            raise ApiError(
                403, rules.error_body(rules.ERROR_CANNOT_EDIT_OTHERS, "Cannot edit a message authored by another user")
            )
        self.emu.edit_bot_message(
            message,
            request.json,
            self.new_files(request.json, request.parts, message.channel_id, request.route),
            where=request.route,
        )
        return self.emu.message_payload(message)

    async def delete_message(self, request: ApiRequest) -> Any:
        self.emu.delete_message(self._message(request))
        return NO_CONTENT

    async def typing(self, request: ApiRequest) -> Any:
        channel = self._channel(request)
        self.emu.typing.append((channel["id"], self.emu.loop.time()))
        return NO_CONTENT

    async def add_reaction(self, request: ApiRequest) -> Any:
        message = self._message(request)
        emoji = request.params["emoji"]
        if emoji not in message.reactions:
            message.reactions.append(emoji)
        return NO_CONTENT

    async def remove_reaction(self, request: ApiRequest) -> Any:
        message = self._message(request)
        if request.params["emoji"] in message.reactions:
            message.reactions.remove(request.params["emoji"])
        return NO_CONTENT
