"""The emulated REST API (`/api/v10/...`): the routes discord.py uses for a bot with slash commands and views.

Plumbing shared by every route: request log, `Authorization: Bot <token>` check on bot routes (webhook and
interaction routes carry the token in the path), injected 429s (with the `Via` header and JSON body discord.py
needs to retry) and injected errors, JSON or multipart (`payload_json` + `files[n]`) bodies, and JSON responses
with `Content-Type: application/json` exactly (discord.py treats anything else as text).
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from . import payloads as p
from . import rules
from .payloads import Payload
from .records import FileRecord, InteractionRecord, MessageRecord, RequestRecord, route_matches

if TYPE_CHECKING:
    from .server import DiscordEmulator

API_PREFIX = "/api/v10"
log = logging.getLogger(__name__)
NO_CONTENT = object()

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


class ApiError(Exception):
    """An error answer: HTTP status and Discord's JSON error body, optionally recorded as a violation."""

    def __init__(
        self,
        status: int,
        body: Payload,
        *,
        violation: str | None = None,
        interaction: InteractionRecord | None = None,
    ) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        self.violation = violation
        self.interaction = interaction


def check_message(
    body: Payload,
    file_count: int,
    prefix: tuple[str, ...],
    where: str,
    interaction: InteractionRecord | None,
    *,
    check_empty: bool = True,
) -> None:
    """Raise ApiError 400 (50035 or 50006) if a message body breaks a size limit or is empty."""
    errors, empty = rules.validate_message(body, file_count=file_count, prefix=prefix, check_empty=check_empty)
    if errors:
        raise ApiError(
            400,
            rules.invalid_form_body(errors),
            violation=f"{where} rejected (400 50035): " + "; ".join(e.describe() for e in errors),
            interaction=interaction,
        )
    if empty:
        raise ApiError(
            400,
            rules.error_body(rules.ERROR_EMPTY_MESSAGE, "Cannot send an empty message"),
            violation=f"{where} rejected (400 50006): Cannot send an empty message",
            interaction=interaction,
        )


@dataclass
class UploadedPart:
    """A `files[n]` part of a multipart request."""

    index: int
    filename: str
    data: bytes
    content_type: str | None


@dataclass
class ApiRequest:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    parts: list[UploadedPart] = field(default_factory=list)

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def json(self) -> Payload:
        if not isinstance(self.body, dict):
            raise ApiError(400, rules.error_body(50109, "The request body contains invalid JSON."))
        return self.body


Handler = Callable[[ApiRequest], Awaitable[Any]]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response whose Content-Type is exactly `application/json` (no charset)."""
    response = web.Response(body=json.dumps(data).encode(), status=status, headers=headers)
    response.headers["Content-Type"] = "application/json"
    return response


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{pattern}$")


class RestApi:
    """Route table and handlers. Owned by `DiscordEmulator`."""

    def __init__(self, emulator: DiscordEmulator) -> None:
        self.emu = emulator
        self.routes: list[tuple[str, re.Pattern[str], Handler, bool]] = []
        bot, hook = True, False
        add = self._add
        add("GET", "/users/@me", self.get_me, bot)
        add("POST", "/users/@me/channels", self.open_dm, bot)
        add("GET", "/users/{user_id}", self.get_user, bot)
        add("GET", "/oauth2/applications/@me", self.get_application, bot)
        add("GET", "/applications/@me", self.get_application, bot)
        add("GET", "/gateway", self.get_gateway, hook)
        add("GET", "/gateway/bot", self.get_gateway_bot, bot)
        for scope in ("/applications/{application_id}", "/applications/{application_id}/guilds/{guild_id}"):
            add("GET", scope + "/commands", self.get_commands, bot)
            add("PUT", scope + "/commands", self.put_commands, bot)
            add("POST", scope + "/commands", self.post_command, bot)
            add("GET", scope + "/commands/{command_id}", self.get_command, bot)
            add("DELETE", scope + "/commands/{command_id}", self.delete_command, bot)
        add("GET", "/guilds/{guild_id}", self.get_guild, bot)
        add("GET", "/guilds/{guild_id}/channels", self.get_guild_channels, bot)
        add("GET", "/guilds/{guild_id}/roles", self.get_guild_roles, bot)
        add("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member, bot)
        add("GET", "/channels/{channel_id}", self.get_channel, bot)
        add("GET", "/channels/{channel_id}/messages", self.get_messages, bot)
        add("POST", "/channels/{channel_id}/messages", self.create_message, bot)
        add("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message, bot)
        add("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit_message, bot)
        add("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message, bot)
        add("POST", "/channels/{channel_id}/typing", self.typing, bot)
        add("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self.add_reaction, bot)
        add("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self.remove_reaction, bot)
        add("POST", "/interactions/{interaction_id}/{token}/callback", self.interaction_callback, hook)
        add("POST", "/webhooks/{application_id}/{token}", self.followup, hook)
        add("GET", "/webhooks/{application_id}/{token}/messages/{message_id}", self.get_webhook_message, hook)
        add("PATCH", "/webhooks/{application_id}/{token}/messages/{message_id}", self.edit_webhook_message, hook)
        add("DELETE", "/webhooks/{application_id}/{token}/messages/{message_id}", self.delete_webhook_message, hook)

    def _add(self, method: str, template: str, handler: Handler, needs_auth: bool) -> None:
        self.routes.append((method, _compile(template), handler, needs_auth))

    # ----------------------------------------------------------------------------------------------------- plumbing

    async def handle(self, request: web.Request) -> web.StreamResponse:
        emu = self.emu
        path = request.path[len(API_PREFIX) :] or "/"
        method = request.method.upper()
        record = RequestRecord(method, path, dict(request.query), 0, None, [], emu.loop.time())
        emu.requests.append(record)
        try:
            response = await self._handle(request, record)
        except Exception as exc:  # an emulator bug: answer 400 (discord.py would retry a 500 slowly) and report it
            log.exception("emulator error on %s", record.route)
            emu.violate(f"emulator internal error on {record.route}: {exc!r}")
            response = json_response({"message": f"emulator internal error: {exc!r}", "code": 0}, 400)
        finally:
            emu.notifier.notify()
        record.status = response.status
        return response

    async def _handle(self, request: web.Request, record: RequestRecord) -> web.Response:
        emu = self.emu
        try:
            match = self._match(record.method, record.path)
            if match is None:
                raise ApiError(
                    404,
                    {"message": "404: Not Found", "code": 0},
                    violation=f"the emulator does not support {record.route}",
                )
            handler, params, needs_auth = match
            if needs_auth and request.headers.get("Authorization") != f"Bot {emu.token}":
                raise ApiError(401, {"message": "401: Unauthorized", "code": 0})
            limited = self._rate_limited(record)
            if limited is not None:
                return limited
            for failure in emu.failure_rules:
                if not failure.exhausted and route_matches(failure.pattern, record.method, record.path):
                    failure.hits += 1
                    raise ApiError(failure.status, rules.error_body(failure.code, failure.message))
            body, parts = await self._read_body(request)
            record.body = body
            record.filenames = [part.filename for part in parts]
            api_request = ApiRequest(record.method, record.path, params, record.query, body, parts)
            result = await handler(api_request)
        except ApiError as error:
            record.code = error.body.get("code")
            if error.interaction is not None:
                error.interaction.rejected.append((error.status, int(error.body.get("code") or 0)))
            if error.violation:
                emu.violate(error.violation, error.interaction)
            return json_response(error.body, error.status)
        if result is NO_CONTENT:
            return web.Response(status=204)
        return json_response(result)

    def _match(self, method: str, path: str) -> tuple[Handler, dict[str, str], bool] | None:
        for route_method, pattern, handler, needs_auth in self.routes:
            if route_method != method:
                continue
            found = pattern.match(path)
            if found:
                return handler, found.groupdict(), needs_auth
        return None

    def _rate_limited(self, record: RequestRecord) -> web.Response | None:
        for rule in self.emu.rate_limit_rules:
            if rule.exhausted or not route_matches(rule.pattern, record.method, record.path):
                continue
            rule.hits += 1
            headers = {
                "Via": "1.1 google",
                "Retry-After": str(max(1, round(rule.retry_after))),
                "X-RateLimit-Scope": "global" if rule.is_global else "user",
            }
            if rule.is_global:
                headers["X-RateLimit-Global"] = "true"
            body = {"message": "You are being rate limited.", "retry_after": rule.retry_after, "global": rule.is_global}
            record.code = 0
            return json_response(body, 429, headers)
        return None

    async def _read_body(self, request: web.Request) -> tuple[Any, list[UploadedPart]]:
        if request.content_type.startswith("multipart/"):
            body: Any = None
            parts: list[UploadedPart] = []
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):  # nested multipart: not used by discord.py
                    continue
                data = await part.read(decode=False)
                name = part.name or ""
                if name == "payload_json":
                    body = json.loads(data)
                elif name.startswith("files[") and name.endswith("]"):
                    filename = part.filename or f"file{len(parts)}"
                    guessed = mimetypes.guess_type(filename)[0]
                    parts.append(UploadedPart(int(name[6:-1]), filename, bytes(data), guessed))
            return body, parts
        raw = await request.read()
        if not raw:
            return None, []
        try:
            return json.loads(raw), []
        except ValueError:
            raise ApiError(400, rules.error_body(50109, "The request body contains invalid JSON.")) from None

    # --------------------------------------------------------------------------------------------- users, app, guild

    async def get_me(self, request: ApiRequest) -> Any:
        return self.emu.bot_user | {"verified": True, "mfa_enabled": False, "flags": 0}

    async def get_user(self, request: ApiRequest) -> Any:
        found = self.emu.find_user(request.params["user_id"])
        if found is None:
            raise ApiError(404, rules.error_body(rules.ERROR_UNKNOWN_USER, "Unknown User"))
        return found

    async def open_dm(self, request: ApiRequest) -> Any:
        found = self.emu.find_user(str(request.json.get("recipient_id")))
        if found is None:
            raise ApiError(404, rules.error_body(rules.ERROR_UNKNOWN_USER, "Unknown User"))
        return self.emu.dm_channel(found)

    async def get_application(self, request: ApiRequest) -> Any:
        emu = self.emu
        return p.application(emu.application_id, emu.bot_user["username"], emu.owner, bot_user=emu.bot_user)

    async def get_gateway(self, request: ApiRequest) -> Any:
        return {"url": self.emu.gateway_url.rstrip("/")}

    async def get_gateway_bot(self, request: ApiRequest) -> Any:
        return {
            "url": self.emu.gateway_url.rstrip("/"),
            "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1},
        }

    def _guild(self, request: ApiRequest) -> None:
        if request.params["guild_id"] != self.emu.guild.id:
            raise ApiError(404, rules.error_body(10004, "Unknown Guild"))

    async def get_guild(self, request: ApiRequest) -> Any:
        self._guild(request)
        data = self.emu.guild.payload()
        for key in ("members", "channels", "threads", "presences", "voice_states"):
            data.pop(key, None)
        return data

    async def get_guild_channels(self, request: ApiRequest) -> Any:
        self._guild(request)
        return list(self.emu.guild.channels.values())

    async def get_guild_roles(self, request: ApiRequest) -> Any:
        self._guild(request)
        return list(self.emu.guild.roles.values())

    async def get_member(self, request: ApiRequest) -> Any:
        self._guild(request)
        found = self.emu.guild.members.get(request.params["user_id"])
        if found is None:
            raise ApiError(404, rules.error_body(rules.ERROR_UNKNOWN_MEMBER, "Unknown Member"))
        return found

    # --------------------------------------------------------------------------------------------------- commands

    def _scope(self, request: ApiRequest) -> str | None:
        if request.params["application_id"] != self.emu.application_id:
            raise ApiError(403, rules.error_body(50001, "Missing Access"))
        guild_id = request.params.get("guild_id")
        if guild_id is not None and guild_id != self.emu.guild.id:
            raise ApiError(403, rules.error_body(50001, "Missing Access"))
        return guild_id

    async def get_commands(self, request: ApiRequest) -> Any:
        return list(self.emu.command_registry(self._scope(request)).values())

    async def get_command(self, request: ApiRequest) -> Any:
        for command in self.emu.command_registry(self._scope(request)).values():
            if command["id"] == request.params["command_id"]:
                return command
        raise ApiError(404, rules.error_body(10063, "Unknown application command"))

    async def put_commands(self, request: ApiRequest) -> Any:
        scope = self._scope(request)
        if not isinstance(request.body, list):
            raise ApiError(400, rules.error_body(50109, "The request body contains invalid JSON."))
        self._validate_commands(request.body, request.route)
        return self.emu.store_commands(scope, request.body, replace=True)

    async def post_command(self, request: ApiRequest) -> Any:
        scope = self._scope(request)
        self._validate_commands([request.json], request.route)
        return self.emu.store_commands(scope, [request.json], replace=False)[0]

    async def delete_command(self, request: ApiRequest) -> Any:
        registry = self.emu.command_registry(self._scope(request))
        for key, command in list(registry.items()):
            if command["id"] == request.params["command_id"]:
                del registry[key]
                return NO_CONTENT
        raise ApiError(404, rules.error_body(10063, "Unknown application command"))

    def _validate_commands(self, commands: list[Payload], where: str) -> None:
        errors: list[rules.FieldError] = []
        for index, command in enumerate(commands):
            at = (str(index),)
            name = command.get("name")
            if not isinstance(name, str) or not 1 <= len(name) <= 32:
                errors.append(rules.FieldError((*at, "name"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32"))
            if command.get("type", 1) == 1:
                description = command.get("description")
                if not isinstance(description, str) or not 1 <= len(description) <= 100:
                    errors.append(
                        rules.FieldError((*at, "description"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100")
                    )
            if len(command.get("options") or []) > 25:
                errors.append(rules.FieldError((*at, "options"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer"))
        if errors:
            raise ApiError(
                400,
                rules.invalid_form_body(errors),
                violation=f"{where} rejected (400 50035): " + "; ".join(e.describe() for e in errors),
            )

    # ---------------------------------------------------------------------------------------------------- channels

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

    # ------------------------------------------------------------------------------------------- shared validation

    def new_files(
        self,
        body: Any,
        parts: list[UploadedPart],
        channel_id: str,
        where: str,
        interaction: InteractionRecord | None = None,
    ) -> list[FileRecord]:
        """FileRecords for the uploaded `files[n]`, named/described by the `attachments` entries with id n."""
        meta: dict[int, Payload] = {}
        if isinstance(body, dict):
            for entry in body.get("attachments") or []:
                try:
                    meta[int(entry.get("id"))] = entry
                except (TypeError, ValueError):
                    continue
        limit = self.emu.attachment_size_limit
        too_big = [part.filename for part in parts if len(part.data) > limit]
        if too_big:
            raise ApiError(
                413,
                rules.error_body(rules.ERROR_ENTITY_TOO_LARGE, "Request entity too large"),
                violation=f"{where} rejected (413): {too_big} larger than {limit} bytes",
                interaction=interaction,
            )
        files = []
        for part in parts:
            entry = meta.get(part.index, {})
            files.append(
                self.emu.store_file(
                    channel_id,
                    str(entry.get("filename") or part.filename),
                    part.data,
                    content_type=part.content_type,
                    description=entry.get("description"),
                )
            )
        return files

    # ------------------------------------------------------------------------------------------------ interactions

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
