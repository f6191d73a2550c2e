"""`DiscordEmulator`: a loopback Discord (gateway + REST) for the unmodified discord.py client.

    async with DiscordEmulator() as emu:          # serves 127.0.0.1:<free port> and patches discord.py's URLs
        async with running_bot(emu, bot):         # tests/discord_emulator/fixtures.py
            interaction = await emu.invoke_command("ask", {"question": "why?"})
            reply = await interaction.wait_response_done(lambda m: "because" in m.content)
        assert emu.violations == []

The emulator keeps a record of everything the bot produced (messages with edit history, embeds, components,
files, interaction responses and followups), offers await-able helpers that wake on every recorded change, and
enforces the Discord rules a bot can break (3 s first-response deadline, double acknowledgement, size limits,
allowed mentions, rate limits on demand). Broken rules are answered like Discord does and listed in
`emu.violations`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import web

from . import payloads as p
from . import rules
from .gateway import Gateway
from .payloads import FileUpload, Payload, Resolved
from .records import (
    FailureRule,
    FileRecord,
    InteractionRecord,
    MessageRecord,
    Metrics,
    Notifier,
    RateLimitRule,
    RequestRecord,
    Revision,
    route_matches,
)
from .rest import API_PREFIX, ApiError, RestApi, check_message
from .state import GuildState

log = logging.getLogger(__name__)

UserRef = Payload | str | None
ChannelRef = Payload | str | None
MessageRef = MessageRecord | str
Upload = FileUpload | tuple[str, bytes] | tuple[str, bytes, str]


class DiscordEmulator:
    """A Discord server on 127.0.0.1 for one bot, one guild, its channels, members and DMs.

    Parameters set the world (`guild_name`, `channel_names`, `usernames`: the first channel and user are the
    defaults of the user actions) and the rules (`ack_deadline` seconds for the first interaction response,
    `token_lifetime` seconds for followups/edits, `attachment_size_limit` bytes per file). With `patch=True` the
    emulator points discord.py at itself while running (see `patch_discord`).
    """

    def __init__(
        self,
        *,
        token: str = "emulator-bot-token",
        bot_name: str = "ragscope",
        guild_name: str = "Emulated Guild",
        channel_names: Sequence[str] = ("general", "random"),
        usernames: Sequence[str] = ("alice", "bob"),
        everyone_permissions: int = p.DEFAULT_EVERYONE_PERMISSIONS,
        bot_permissions: int = p.DEFAULT_BOT_PERMISSIONS,
        ack_deadline: float = 3.0,
        token_lifetime: float = 15 * 60.0,
        attachment_size_limit: int = p.DEFAULT_ATTACHMENT_SIZE_LIMIT,
        heartbeat_interval_ms: int = 41250,
        patch: bool = True,
    ) -> None:
        if not channel_names or not usernames:
            raise ValueError("the emulator needs at least one channel and one user")
        self.token = token
        self.ack_deadline = ack_deadline
        self.token_lifetime = token_lifetime
        self.attachment_size_limit = attachment_size_limit
        self._patch_on_start = patch

        self.bot_user = p.user(bot_name, bot=True)
        self.bot_id: str = self.bot_user["id"]
        self.application_id: str = self.bot_id
        self.owner = p.user("owner")
        self.users: dict[str, Payload] = {"owner": self.owner}
        self.guild = GuildState.create(guild_name, self.owner, everyone_permissions)
        bot_role = self.guild.add_role(bot_name, bot_permissions, managed=True)
        self.guild.add_member(self.bot_user, roles=[bot_role["id"]])
        for name in channel_names:
            self.guild.add_channel(name)
        for name in usernames:
            self.users[name] = p.user(name)
            self.guild.add_member(self.users[name])
        self.default_channel: Payload = self.guild.channel_named(channel_names[0])
        self.default_user: Payload = self.users[usernames[0]]
        self.dm_channels: dict[str, Payload] = {}

        self.messages: dict[str, MessageRecord] = {}
        self._channel_messages: dict[str, list[MessageRecord]] = {}
        self.files: dict[str, FileRecord] = {}
        self.interactions: list[InteractionRecord] = []
        self.interactions_by_id: dict[str, InteractionRecord] = {}
        self.interactions_by_token: dict[str, InteractionRecord] = {}
        self.requests: list[RequestRecord] = []
        self.typing: list[tuple[str, float]] = []
        self.violations: list[str] = []
        self.global_commands: dict[str, Payload] = {}
        self.guild_commands: dict[str, dict[str, Payload]] = {}
        self.command_syncs: list[tuple[str | None, list[Payload]]] = []
        self.rate_limit_rules: list[RateLimitRule] = []
        self.failure_rules: list[FailureRule] = []

        self.notifier = Notifier(self._describe, self._client_failure)
        self.gateway = Gateway(self, heartbeat_interval_ms)
        self.rest = RestApi(self)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._watched: list[asyncio.Task[Any]] = []
        self._patch: contextlib.AbstractContextManager[DiscordEmulator] | None = None

    # ------------------------------------------------------------------------------------------------- lifecycle

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the emulator is not running")
        return self._loop

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self.gateway.handle)
        app.router.add_get("/attachments/{channel_id}/{file_id}/{filename:.*}", self._download)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self.rest.handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        if self._patch_on_start:
            self._patch = self.patch_discord()
            self._patch.__enter__()

    async def stop(self) -> None:
        """Close gateway sockets and the server. Close the bot first (`await bot.close()`), or it reconnects."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._patch is not None:
            self._patch.__exit__(None, None, None)
            self._patch = None
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator[DiscordEmulator]:
        """Point discord.py at the emulator (`Route.BASE`, `DiscordWebSocket.DEFAULT_GATEWAY`); restore on exit."""
        if not self.port:
            raise RuntimeError("start the emulator before patching discord.py")
        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.api_url
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield self
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    def watch_client(self, task: asyncio.Task[Any]) -> None:
        """Make every wait helper fail at once (ClientCrashed) if this task (the bot's `start()`) ends."""
        self._watched.append(task)
        task.add_done_callback(lambda _: self.notifier.notify())

    def unwatch_client(self, task: asyncio.Task[Any]) -> None:
        if task in self._watched:
            self._watched.remove(task)

    def _client_failure(self) -> BaseException | None:
        for task in self._watched:
            if task.done():
                if task.cancelled():
                    return asyncio.CancelledError("the client task was cancelled")
                return task.exception() or RuntimeError("the client task finished")
        return None

    # ------------------------------------------------------------------------------------------------ the world

    def get_user(self, name: str) -> Payload:
        """A user by username (the defaults are "owner", the `usernames`, and the bot's name)."""
        if name == self.bot_user["username"]:
            return self.bot_user
        return self.users[name]

    def get_channel(self, name: str) -> Payload:
        """A guild text channel by name."""
        return self.guild.channel_named(name)

    def get_role(self, name: str) -> Payload:
        return self.guild.role_named(name)

    def find_user(self, user_id: str) -> Payload | None:
        if user_id == self.bot_id:
            return self.bot_user
        return next((u for u in self.users.values() if u["id"] == user_id), None)

    def find_channel(self, channel_id: str) -> Payload | None:
        return self.guild.channels.get(channel_id) or self.dm_channels.get(channel_id)

    def dm_channel(self, user: UserRef) -> Payload:
        """The DM channel between the bot and `user` (created on first use)."""
        recipient = self._user(user)
        for channel in self.dm_channels.values():
            if channel["recipients"][0]["id"] == recipient["id"]:
                return channel
        channel = p.dm_channel(recipient)
        self.dm_channels[channel["id"]] = channel
        return channel

    def add_member(self, username: str, *, roles: Sequence[Payload | str] = (), nick: str | None = None) -> Payload:
        """Add a guild member (dispatches GUILD_MEMBER_ADD when connected). Returns the user payload."""
        new_user = p.user(username)
        self.users[username] = new_user
        full = self.guild.add_member(new_user, [self._role(r)["id"] for r in roles], nick)
        self.gateway.dispatch("GUILD_MEMBER_ADD", full | {"guild_id": self.guild.id})
        self.notifier.notify()
        return new_user

    def add_role(self, name: str, permissions: int = 0) -> Payload:
        """Create a role (dispatches GUILD_ROLE_CREATE when connected)."""
        role = self.guild.add_role(name, permissions)
        self.gateway.dispatch("GUILD_ROLE_CREATE", {"guild_id": self.guild.id, "role": role})
        return role

    def set_roles(self, user: UserRef, roles: Sequence[Payload | str]) -> None:
        """Replace a member's roles (dispatches GUILD_MEMBER_UPDATE when connected)."""
        target = self._user(user)
        full = self.guild.members[target["id"]]
        full["roles"] = [self._role(r)["id"] for r in roles]
        self.gateway.dispatch("GUILD_MEMBER_UPDATE", full | {"guild_id": self.guild.id})

    def add_channel(self, name: str) -> Payload:
        """Create a text channel (dispatches CHANNEL_CREATE when connected)."""
        channel = self.guild.add_channel(name)
        self.gateway.dispatch("CHANNEL_CREATE", channel)
        return channel

    def permissions(self, user: UserRef) -> int:
        return self.guild.permissions(self._user(user)["id"])

    def _user(self, ref: UserRef) -> Payload:
        if ref is None:
            return self.default_user
        if isinstance(ref, dict):
            return ref
        found = self.users.get(ref) or self.find_user(ref)
        if found is None:
            raise LookupError(f"unknown user {ref!r}")
        return found

    def _channel(self, ref: ChannelRef) -> Payload:
        if ref is None:
            return self.default_channel
        if isinstance(ref, dict):
            ref = str(ref["id"])
        found = self.find_channel(ref)
        if found is None:
            found = next((c for c in self.guild.channels.values() if c["name"] == ref), None)
        if found is None:
            raise LookupError(f"unknown channel {ref!r}")
        return found

    def _channel_id(self, ref: ChannelRef) -> str | None:
        return None if ref is None else self._channel(ref)["id"]

    def _role(self, ref: Payload | str) -> Payload:
        if isinstance(ref, dict):
            return ref
        return self.guild.roles.get(ref) or self.guild.role_named(ref)

    # ------------------------------------------------------------------------------------------------- messages

    def channel_messages(self, channel: ChannelRef) -> list[MessageRecord]:
        """Every message in a channel, oldest first (user and bot messages, ephemeral ones included)."""
        channel_id = self._channel(channel)["id"]
        return list(self._channel_messages.get(channel_id, []))

    def bot_messages(self, channel: ChannelRef = None) -> list[MessageRecord]:
        """Messages the bot produced (channel sends, interaction responses and followups), oldest first."""
        channel_id = self._channel_id(channel)
        return [
            m
            for m in self.messages.values()
            if m.author_id == self.bot_id and (channel_id is None or m.channel_id == channel_id)
        ]

    def store_file(
        self,
        channel_id: str,
        filename: str,
        data: bytes,
        *,
        content_type: str | None = None,
        description: str | None = None,
        ephemeral: bool = False,
    ) -> FileRecord:
        """Keep the bytes and serve them at an `/attachments/...` URL placed in payloads."""
        file_id = p.next_id()
        content_type = content_type or mimetypes.guess_type(filename)[0]
        # Discord keeps the name in the URL's last segment; a "/" in it (a path-traversal test) must not split it.
        url = f"{self.base_url}/attachments/{channel_id}/{file_id}/{quote(filename, safe='')}"
        record = FileRecord(file_id, filename, data, url, content_type, description, ephemeral)
        self.files[file_id] = record
        return record

    def _store_message(self, message: MessageRecord, source: str) -> None:
        message.created_at = self.loop.time()
        self._snapshot(message, source)
        self.messages[message.id] = message
        self._channel_messages.setdefault(message.channel_id, []).append(message)

    def _snapshot(self, message: MessageRecord, source: str) -> None:
        message.revisions.append(
            Revision(
                content=message.content,
                embeds=list(message.embeds),
                components=list(message.components),
                files=list(message.files),
                flags=message.flags,
                at=self.loop.time(),
                source=source,
            )
        )

    def _mentions(self, content: str) -> tuple[list[Payload], list[str], bool]:
        users = []
        for user_id in dict.fromkeys(rules.USER_MENTION.findall(content)):
            found = self.find_user(user_id)
            if found is not None:
                full = self.guild.members.get(user_id)
                users.append(found | ({"member": p.partial_member(full)} if full else {}))
        roles = [r for r in dict.fromkeys(rules.ROLE_MENTION.findall(content)) if r in self.guild.roles]
        return users, roles, bool(rules.EVERYONE_MENTION.search(content))

    def message_payload(self, message: MessageRecord, *, gateway: bool = False) -> Payload:
        """The Discord message object of a record (with `member` for gateway dispatches in guilds)."""
        member = None
        if gateway and message.guild_id and message.webhook_id is None:
            full = self.guild.members.get(message.author_id)
            member = p.partial_member(full) if full else None
        mentions, mention_roles, everyone = self._mentions(message.content)
        return p.message(
            id=message.id,
            channel_id=message.channel_id,
            guild_id=message.guild_id,
            author=message.author,
            member=member,
            content=message.content,
            mentions=mentions,
            mention_roles=mention_roles,
            mention_everyone=everyone and message.author_id != self.bot_id,
            attachments=message.attachments,
            embeds=message.embeds,
            components=message.components,
            type=message.type,
            flags=message.flags,
            timestamp=message.timestamp,
            edited_timestamp=message.edited_timestamp,
            tts=message.tts,
            nonce=message.nonce,
            webhook_id=message.webhook_id,
            application_id=message.application_id,
            message_reference=message.message_reference,
            referenced_message=message.referenced_message,
            interaction_metadata=message.interaction_metadata,
            reactions=[
                {"count": 1, "me": True, "emoji": {"id": None, "name": emoji}, "count_details": {"normal": 1}}
                for emoji in message.reactions
            ],
        )

    def _dispatch_message(self, event: str, message: MessageRecord) -> None:
        if not message.ephemeral:
            self.gateway.dispatch(event, self.message_payload(message, gateway=True))

    @staticmethod
    def _normalize_embeds(embeds: Any) -> list[Payload]:
        return [{"type": "rich"} | dict(embed) for embed in embeds or []]

    @staticmethod
    def _normalize_components(components: Any) -> list[Payload]:
        copied: list[Payload] = [dict(c) for c in components or []]
        counter = 0

        def number(items: list[Payload]) -> None:
            nonlocal counter
            for item in items:
                counter += 1
                item.setdefault("id", counter)
                if item.get("components"):
                    item["components"] = [dict(child) for child in item["components"]]
                    number(item["components"])

        number(copied)
        return copied

    def _check_mentions(
        self,
        content: str,
        allowed: Payload | None,
        *,
        is_reply: bool,
        where: str,
        interaction: InteractionRecord | None,
    ) -> None:
        problem = rules.mention_violation(content, allowed, is_reply=is_reply)
        if problem:
            self.violate(f"{where}: {problem}", interaction)

    def create_bot_message(
        self,
        channel: Payload,
        body: Payload,
        files: list[FileRecord],
        *,
        where: str,
        flags: int = 0,
        interaction: InteractionRecord | None = None,
        referenced: MessageRecord | None = None,
        followup: bool = False,
    ) -> MessageRecord:
        """Record a message the bot created (already validated) and dispatch MESSAGE_CREATE unless ephemeral."""
        content = str(body.get("content") or "")
        message = MessageRecord(
            id=p.next_id(),
            channel_id=channel["id"],
            guild_id=channel.get("guild_id"),
            author=self.bot_user,
            content=content,
            embeds=self._normalize_embeds(body.get("embeds")),
            components=self._normalize_components(body.get("components")),
            files=files,
            flags=flags,
            allowed_mentions=body.get("allowed_mentions"),
            nonce=body.get("nonce"),
            tts=bool(body.get("tts")),
            last_request=body,
        )
        for file in files:
            file.ephemeral = message.ephemeral
        if referenced is not None:
            message.type = p.MESSAGE_REPLY
            message.message_reference = p.message_reference(referenced.id, referenced.channel_id, referenced.guild_id)
            message.referenced_message = self.message_payload(referenced)
        if interaction is not None:
            message.interaction_id = interaction.id
            message.webhook_id = self.application_id
            message.application_id = self.application_id
            is_command = interaction.type == p.INTERACTION_APPLICATION_COMMAND
            message.type = p.MESSAGE_CHAT_INPUT_COMMAND if is_command else p.MESSAGE_DEFAULT
            message.interaction_metadata = p.interaction_metadata(
                interaction.id,
                interaction.type,
                interaction.user,
                guild_id=interaction.guild_id,
                name=interaction.name if is_command else None,
                interacted_message_id=interaction.payload.get("message", {}).get("id"),
                original_response_message_id=interaction.original.id if followup and interaction.original else None,
            )
        self._store_message(message, "defer" if message.loading else "create")
        if content and not message.ephemeral:
            is_reply = referenced is not None and message.type == p.MESSAGE_REPLY
            self._check_mentions(
                content, message.allowed_mentions, is_reply=is_reply, where=where, interaction=interaction
            )
        self._dispatch_message("MESSAGE_CREATE", message)
        self.notifier.notify()
        return message

    def edit_bot_message(
        self,
        message: MessageRecord,
        body: Payload,
        new_files: list[FileRecord],
        *,
        where: str,
        interaction: InteractionRecord | None = None,
        prefix: tuple[str, ...] = (),
    ) -> None:
        """Apply a PATCH (or an UPDATE_MESSAGE callback) after validating the merged result; MESSAGE_UPDATE."""
        content = message.content
        if "content" in body:
            content = str(body["content"] or "")
        embeds = self._normalize_embeds(body["embeds"]) if "embeds" in body else message.embeds
        components = self._normalize_components(body["components"]) if "components" in body else message.components
        if "attachments" in body:
            keep = {str(entry.get("id")) for entry in body["attachments"] or []}
            files = [f for f in message.files if f.id in keep] + new_files
        else:
            files = message.files + new_files
        flags = message.flags & ~p.FLAG_LOADING
        if "flags" in body and body["flags"] is not None:
            changeable = p.FLAG_SUPPRESS_EMBEDS
            flags = (flags & ~changeable) | (int(body["flags"]) & changeable)
        merged = {"content": content, "embeds": embeds, "components": components, "flags": flags}
        if body.get("allowed_mentions") is not None:
            merged["allowed_mentions"] = body["allowed_mentions"]
        check_message(merged, len(files), prefix, where, interaction)
        message.content = content
        message.embeds = embeds
        message.components = components
        message.files = files
        message.flags = flags
        message.edited_timestamp = p.iso_now()
        message.last_request = body
        if "allowed_mentions" in body:
            message.allowed_mentions = body["allowed_mentions"]
        self._snapshot(message, "callback" if prefix else "edit")
        if "content" in body and content and not message.ephemeral:
            self._check_mentions(
                content, message.allowed_mentions, is_reply=False, where=where, interaction=interaction
            )
        self._dispatch_message("MESSAGE_UPDATE", message)
        self.notifier.notify()

    def delete_message(self, message: MessageRecord) -> None:
        message.deleted = True
        if not message.ephemeral:
            data: Payload = {"id": message.id, "channel_id": message.channel_id}
            if message.guild_id:
                data["guild_id"] = message.guild_id
            self.gateway.dispatch("MESSAGE_DELETE", data)
        self.notifier.notify()

    async def _download(self, request: web.Request) -> web.StreamResponse:
        record = self.files.get(request.match_info["file_id"])
        if record is None:
            return web.Response(status=404, text="Not Found")
        record.downloads += 1
        self.notifier.notify()
        return web.Response(body=record.data, content_type=record.content_type or "application/octet-stream")

    # ------------------------------------------------------------------------------------------------- commands

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

    # --------------------------------------------------------------------------------------- violations, deadlines

    def violate(self, text: str, interaction: InteractionRecord | None = None) -> None:
        """Record a broken Discord rule (tests assert `emu.violations == []`)."""
        log.warning("Discord rule broken: %s", text)
        self.violations.append(text)
        if interaction is not None:
            interaction.violations.append(text)
        self.notifier.notify()

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

    def rate_limit(
        self, pattern: str, *, times: int = 1, retry_after: float = 0.3, is_global: bool = False
    ) -> RateLimitRule:
        """Answer the next `times` requests matching `pattern` (e.g. "PATCH /webhooks/*/*/messages/*", paths
        below /api/v10, `*` matches one segment) with 429, `Via` header and `{"retry_after", "global"}` body."""
        rule = RateLimitRule(pattern, times, retry_after, is_global)
        self.rate_limit_rules.append(rule)
        return rule

    def fail_requests(
        self,
        pattern: str,
        *,
        status: int = 403,
        code: int = 50013,
        message: str = "Missing Permissions",
        times: int = 1,
    ) -> FailureRule:
        """Answer the next `times` requests matching `pattern` with an error (default 403 Missing Permissions)."""
        rule = FailureRule(pattern, times, status, code, message)
        self.failure_rules.append(rule)
        return rule

    # ------------------------------------------------------------------------------------------- user actions

    def _require_session(self) -> None:
        if self.gateway.session is None:
            raise RuntimeError("no bot has identified with the emulator yet (start the bot and wait for ready)")

    def _upload(self, channel_id: str, upload: Upload | Payload, *, ephemeral: bool = False) -> FileRecord:
        if isinstance(upload, dict):
            return self.files[str(upload["id"])]
        if isinstance(upload, FileUpload):
            return self.store_file(
                channel_id,
                upload.filename,
                upload.data,
                content_type=upload.content_type,
                description=upload.description,
                ephemeral=ephemeral,
            )
        content_type = upload[2] if len(upload) == 3 else None
        return self.store_file(channel_id, upload[0], upload[1], content_type=content_type, ephemeral=ephemeral)

    async def send_message(
        self,
        channel: ChannelRef = None,
        author: UserRef = None,
        content: str = "",
        *,
        attachments: Sequence[Upload] = (),
        mention_bot: bool = False,
        reply_to: MessageRef | None = None,
    ) -> MessageRecord:
        """A user posts a message (MESSAGE_CREATE). `mention_bot` prefixes `<@bot_id> `."""
        self._require_session()
        target = self._channel(channel)
        user = self._user(author)
        if mention_bot:
            content = f"<@{self.bot_id}> {content}"
        message = MessageRecord(
            id=p.next_id(),
            channel_id=target["id"],
            guild_id=target.get("guild_id"),
            author=user,
            content=content,
            files=[self._upload(target["id"], upload) for upload in attachments],
        )
        if reply_to is not None:
            referenced = self._message(reply_to)
            message.type = p.MESSAGE_REPLY
            message.message_reference = p.message_reference(referenced.id, referenced.channel_id, referenced.guild_id)
            message.referenced_message = self.message_payload(referenced)
        self._store_message(message, "create")
        self._dispatch_message("MESSAGE_CREATE", message)
        self.notifier.notify()
        return message

    def _message(self, ref: MessageRef) -> MessageRecord:
        return ref if isinstance(ref, MessageRecord) else self.messages[str(ref)]

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

    # ----------------------------------------------------------------------------------------- gateway disruptions

    def request_reconnect(self) -> None:
        """Send op 7 RECONNECT; discord.py reconnects and RESUMEs (await `wait_for_resume`)."""
        self.gateway.send_reconnect()

    async def drop_connection(self, code: int = 4000) -> None:
        """Close the gateway socket with `code` (4000: the client resumes)."""
        await self.gateway.close_connection(code)

    # ---------------------------------------------------------------------------------------------------- waiting

    async def wait_for(self, check: Callable[[], Any], timeout: float = 10.0, what: str = "a condition") -> Any:
        """Await the first truthy (not None/False) result of `check()`, re-evaluated on every recorded change."""
        return await self.notifier.wait_for(check, timeout, what)

    async def wait_until_ready(self, timeout: float = 10.0) -> None:
        """Until the emulator has sent READY and GUILD_CREATE to an identified bot."""
        await self.notifier.wait_for(lambda: self.gateway.ready_sent, timeout, "the bot to IDENTIFY")

    async def wait_for_message(
        self,
        channel_id: ChannelRef = None,
        predicate: Callable[[MessageRecord], bool] | None = None,
        *,
        timeout: float = 10.0,
        from_bot: bool = True,
        after: MessageRef | None = None,
    ) -> MessageRecord:
        """The first message (oldest first) in the channel (any channel if None) matching `predicate`.

        `channel_id` accepts a channel id, a channel payload or a guild channel name.

        Only the bot's messages unless `from_bot=False`; only messages newer than `after`; "thinking"
        placeholders of deferred interactions are skipped until they are edited.
        """
        wanted = self._channel_id(channel_id)
        after_id = int(self._message(after).id) if after is not None else 0

        def check() -> MessageRecord | None:
            for message in self.messages.values():
                if wanted is not None and message.channel_id != wanted:
                    continue
                if from_bot and message.author_id != self.bot_id:
                    continue
                if int(message.id) <= after_id or message.loading:
                    continue
                if predicate is None or predicate(message):
                    return message
            return None

        where = f"in channel {wanted}" if wanted else "in any channel"
        return await self.notifier.wait_for(check, timeout, f"a message {where}")

    async def wait_for_edit(
        self,
        message: MessageRef,
        predicate: Callable[[MessageRecord], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = 10.0,
    ) -> MessageRecord:
        """Until `message` has been edited at least `count` times and satisfies `predicate`."""
        record = self._message(message)

        def check() -> MessageRecord | None:
            if record.edit_count >= count and (predicate is None or predicate(record)):
                return record
            return None

        return await self.notifier.wait_for(check, timeout, f"{count} edit(s) of message {record.id}")

    async def wait_for_typing(self, channel_id: ChannelRef = None, timeout: float = 10.0) -> float:
        """Until the bot triggered the typing indicator in the channel; returns the loop time."""
        wanted = self._channel_id(channel_id)
        return await self.notifier.wait_for(
            lambda: next((t for c, t in self.typing if wanted is None or c == wanted), None),
            timeout,
            "a typing indicator",
        )

    async def wait_for_request(
        self, pattern: str, *, status: int | None = None, timeout: float = 10.0
    ) -> RequestRecord:
        """The first logged REST request matching `pattern` (and `status`)."""
        return await self.notifier.wait_for(
            lambda: next(
                (
                    r
                    for r in self.requests
                    if route_matches(pattern, r.method, r.path) and (status is None or r.status == status)
                ),
                None,
            ),
            timeout,
            f"a request {pattern}" + (f" answered {status}" if status else ""),
        )

    async def wait_for_violation(self, text: str = "", timeout: float = 10.0) -> str:
        """The first violation containing `text`."""
        return await self.notifier.wait_for(
            lambda: next((v for v in self.violations if text in v), None), timeout, f"a violation containing {text!r}"
        )

    async def wait_for_resume(self, count: int = 1, timeout: float = 10.0) -> None:
        """Until the client has RESUMEd `count` times in total."""
        await self.notifier.wait_for(
            lambda: self.resume_count >= count and self.gateway.connected, timeout, f"{count} RESUME(s)"
        )

    async def wait_for_download(self, file: FileRecord | Payload, timeout: float = 10.0) -> FileRecord:
        """Until the bot downloaded an attachment."""
        record = file if isinstance(file, FileRecord) else self.files[str(file["id"])]
        return await self.notifier.wait_for(
            lambda: record if record.downloads else None, timeout, f"a download of {record.filename}"
        )

    # ------------------------------------------------------------------------------------------------ reporting

    @property
    def identify_count(self) -> int:
        return len(self.gateway.identifies)

    @property
    def resume_count(self) -> int:
        return sum(1 for event, _ in self.gateway.dispatched if event == "RESUMED")

    @property
    def intents(self) -> int | None:
        """The intents of the last IDENTIFY."""
        return self.gateway.intents

    def metrics(self) -> Metrics:
        """Per-interaction latency summary (first response and last activity)."""
        acks = [i.ack_latency for i in self.interactions if i.ack_latency is not None]
        completions = [i.completion_latency for i in self.interactions if i.completion_latency is not None]
        return Metrics(
            interactions=len(self.interactions),
            acknowledged=len(acks),
            expired=sum(1 for i in self.interactions if i.expired),
            ack_latencies=acks,
            completion_latencies=completions,
            requests=len(self.requests),
            rate_limited=sum(1 for r in self.requests if r.status == 429),
            violations=len(self.violations),
        )

    def _describe(self) -> str:
        lines = ["recorded so far:"]
        lines += ["  message " + m.summary() for m in list(self.messages.values())[-8:]]
        lines += ["  " + i.summary() for i in self.interactions[-5:]]
        lines += [f"  request {r.route} -> {r.status}" for r in self.requests[-6:]]
        lines += ["  violation " + v for v in self.violations[-5:]]
        return "\n".join(lines)


__all__ = ["ApiError", "DiscordEmulator"]
