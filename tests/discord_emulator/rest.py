"""The emulated REST API (`/api/v10/...`): the routes discord.py uses for a bot with slash commands and views.

Plumbing shared by every route: request log, `Authorization: Bot <token>` check on bot routes (webhook and
interaction routes carry the token in the path), injected 429s (with the `Via` header and JSON body discord.py
needs to retry) and injected errors, JSON or multipart (`payload_json` + `files[n]`) bodies, and JSON responses
with `Content-Type: application/json` exactly (discord.py treats anything else as text).

The route handlers are mixins: rest_guild.py (users, guild, commands), rest_channels.py (messages) and
rest_interactions.py (callbacks, webhooks); what they share is in rest_base.py.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from . import rules
from .rest_base import (
    API_PREFIX,
    NO_CONTENT,
    ApiError,
    ApiRequest,
    Handler,
    UploadedPart,
    check_message,
    json_response,
)
from .rest_channels import ChannelRoutes
from .rest_guild import GuildRoutes
from .rest_interactions import InteractionRoutes
from .traffic import RequestRecord, route_matches

if TYPE_CHECKING:
    from .server import DiscordEmulator

log = logging.getLogger(__name__)


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{pattern}$")


class RestApi(GuildRoutes, ChannelRoutes, InteractionRoutes):
    """Route table and request plumbing; the handlers come from the mixins. Owned by `DiscordEmulator`."""

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


__all__ = [
    "API_PREFIX",
    "NO_CONTENT",
    "ApiError",
    "ApiRequest",
    "Handler",
    "RestApi",
    "UploadedPart",
    "check_message",
    "json_response",
]
