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

This module has the constructor, the lifecycle (HTTP server, discord.py patching, client watching), injected
failures, gateway disruptions and reporting. The rest of the API is in layers below this class (see base.py):
world.py (users, channels, roles), messages.py (message and file records), commands.py (command registry,
options), interactions.py (user-triggered interactions) and waiting.py (wait helpers); the protocols are in
gateway.py and rest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator, Sequence
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import web

from . import payloads as p
from .gateway import Gateway
from .notifier import Notifier
from .records import Metrics
from .rest import API_PREFIX, ApiError, RestApi
from .state import GuildState
from .traffic import FailureRule, RateLimitRule
from .waiting import WaitingLayer
from .world import ChannelRef as ChannelRef  # re-exported: these were defined here before the split
from .world import MessageRef as MessageRef
from .world import Upload as Upload
from .world import UserRef as UserRef


# One class, because tests reach everything through `emu`; the layers only split its code by concern.
class DiscordEmulator(WaitingLayer):
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
        # The types of the state the layers share are declared in EmulatorBase (base.py), not repeated here.
        self.token = token
        self.ack_deadline = ack_deadline
        self.token_lifetime = token_lifetime
        self.attachment_size_limit = attachment_size_limit
        self._patch_on_start = patch

        self.bot_user = p.user(bot_name, bot=True)
        self.bot_id = self.bot_user["id"]
        self.application_id = self.bot_id
        self.owner = p.user("owner")
        self.users = {"owner": self.owner}
        self.guild = GuildState.create(guild_name, self.owner, everyone_permissions)
        bot_role = self.guild.add_role(bot_name, bot_permissions, managed=True)
        self.guild.add_member(self.bot_user, roles=[bot_role["id"]])
        for name in channel_names:
            self.guild.add_channel(name)
        for name in usernames:
            self.users[name] = p.user(name)
            self.guild.add_member(self.users[name])
        self.default_channel = self.guild.channel_named(channel_names[0])
        self.default_user = self.users[usernames[0]]
        self.dm_channels = {}

        self.messages = {}
        self._channel_messages = {}
        self.files = {}
        self.interactions = []
        self.interactions_by_id = {}
        self.interactions_by_token = {}
        self.requests = []
        self.typing = []
        self.violations = []
        self.global_commands = {}
        self.guild_commands = {}
        self.command_syncs = []
        self.rate_limit_rules: list[RateLimitRule] = []
        self.failure_rules: list[FailureRule] = []

        self.notifier = Notifier(self._describe, self._client_failure)
        self.gateway = Gateway(self, heartbeat_interval_ms)
        self.rest = RestApi(self)
        self.port = 0
        self._loop = None
        self._runner: web.AppRunner | None = None
        self._timers = []
        self._watched: list[asyncio.Task[Any]] = []
        self._patch: contextlib.AbstractContextManager[DiscordEmulator] | None = None

    # ------------------------------------------------------------------------------------------------- lifecycle

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

    # -------------------------------------------------------------------------------------------- injected failures

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

    # ----------------------------------------------------------------------------------------- gateway disruptions

    def request_reconnect(self) -> None:
        """Send op 7 RECONNECT; discord.py reconnects and RESUMEs (await `wait_for_resume`)."""
        self.gateway.send_reconnect()

    async def drop_connection(self, code: int = 4000) -> None:
        """Close the gateway socket with `code` (4000: the client resumes)."""
        await self.gateway.close_connection(code)

    # ------------------------------------------------------------------------------------------------ reporting

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
