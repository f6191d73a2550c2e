"""REST routes about the bot's identity and the guild: users and DMs, the application, the gateway URL, the
guild with its channels, roles and members, and the application commands (validated, then kept by the emulator).

Not here: messages (rest_channels.py), interaction callbacks and webhooks (rest_interactions.py), and the route
table that maps paths to these handlers (rest.py).
"""

from __future__ import annotations

from typing import Any

from . import payloads as p
from . import rules
from .payloads import Payload
from .rest_base import NO_CONTENT, ApiError, ApiRequest, RouteHandlers


class GuildRoutes(RouteHandlers):
    """Handlers for users, application, gateway, guild and command routes (mixed into `RestApi`)."""

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
