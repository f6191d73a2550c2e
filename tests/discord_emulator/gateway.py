"""The emulated gateway: HELLO, heartbeat ACK, IDENTIFY → READY → GUILD_CREATE, RESUME → RESUMED, dispatches.

Frames are JSON text frames (discord.py asks for `compress=zlib-stream` but parses text frames as plain JSON).
Every dispatch gets the next sequence number of the session and is kept in a replay buffer, so events sent while
the client reconnects are replayed after RESUME, as Discord does. Events are filtered by the IDENTIFY intents, and
message content is blanked without the MESSAGE_CONTENT intent (except DMs, the bot's own messages and messages
that mention the bot).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from . import payloads as p
from .payloads import Payload

if TYPE_CHECKING:
    from .server import DiscordEmulator

log = logging.getLogger(__name__)

OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE_UPDATE = 3
OP_RESUME = 6
OP_RECONNECT = 7
OP_REQUEST_GUILD_MEMBERS = 8
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

REPLAY_BUFFER = 2000

_EVENT_INTENTS = {
    "GUILD_CREATE": p.INTENT_GUILDS,
    "GUILD_UPDATE": p.INTENT_GUILDS,
    "GUILD_ROLE_CREATE": p.INTENT_GUILDS,
    "GUILD_ROLE_UPDATE": p.INTENT_GUILDS,
    "GUILD_ROLE_DELETE": p.INTENT_GUILDS,
    "CHANNEL_CREATE": p.INTENT_GUILDS,
    "CHANNEL_UPDATE": p.INTENT_GUILDS,
    "CHANNEL_DELETE": p.INTENT_GUILDS,
    "GUILD_MEMBER_ADD": p.INTENT_GUILD_MEMBERS,
    "GUILD_MEMBER_UPDATE": p.INTENT_GUILD_MEMBERS,
    "GUILD_MEMBER_REMOVE": p.INTENT_GUILD_MEMBERS,
}
_MESSAGE_EVENTS = {"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE", "MESSAGE_REACTION_ADD", "TYPING_START"}


@dataclass(eq=False)
class Connection:
    """One websocket connection and its ordered outbox (a writer task sends the frames in order)."""

    ws: web.WebSocketResponse
    outbox: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    session: Session | None = None
    writer: asyncio.Task[None] | None = None

    def send(self, frame: Payload | str) -> None:
        self.outbox.put_nowait(frame if isinstance(frame, str) else json.dumps(frame))


@dataclass(eq=False)
class Session:
    """A gateway session: survives reconnects; RESUME attaches a new connection to it."""

    id: str
    intents: int
    seq: int = 0
    buffer: list[tuple[int, str]] = field(default_factory=list)
    connection: Connection | None = None


class Gateway:
    """Gateway side of the emulator. Owned by `DiscordEmulator`; use the emulator's methods from tests."""

    def __init__(self, emulator: DiscordEmulator, heartbeat_interval_ms: int = 41250) -> None:
        self.emulator = emulator
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.session: Session | None = None
        self.connections: list[Connection] = []
        self.identifies: list[Payload] = []
        self.resumes: list[Payload] = []
        self.heartbeats = 0
        self.presence_updates: list[Payload] = []
        self.dispatched: list[tuple[str, Payload]] = []
        self.ready_sent = False

    @property
    def intents(self) -> int | None:
        return self.session.intents if self.session is not None else None

    @property
    def connected(self) -> bool:
        return self.session is not None and self.session.connection is not None

    # ------------------------------------------------------------------------------------------- websocket handler

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        connection = Connection(ws)
        connection.writer = asyncio.create_task(self._write(connection), name="emulator-gateway-writer")
        self.connections.append(connection)
        connection.send({"op": OP_HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None, "t": None})
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await self._on_frame(connection, json.loads(message.data))
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            session = connection.session
            if session is not None and session.connection is connection:
                session.connection = None
            connection.outbox.put_nowait(None)
            if connection.writer is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.writer, timeout=1.0)
            self.connections.remove(connection)
            self.emulator.notifier.notify()
        return ws

    async def _write(self, connection: Connection) -> None:
        while True:
            frame = await connection.outbox.get()
            if frame is None or connection.ws.closed:
                return
            try:
                await connection.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return  # the client went away; RESUME replays what it missed

    async def _on_frame(self, connection: Connection, frame: Payload) -> None:
        op = frame.get("op")
        raw = frame.get("d")
        data: Payload = raw if isinstance(raw, dict) else {}
        if op == OP_HEARTBEAT:
            self.heartbeats += 1
            connection.send({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == OP_IDENTIFY:
            await self._identify(connection, data)
        elif op == OP_RESUME:
            await self._resume(connection, data)
        elif op == OP_PRESENCE_UPDATE:
            self.presence_updates.append(data)
        elif op == OP_REQUEST_GUILD_MEMBERS:
            self._members_chunk(data)
        else:
            log.debug("emulator gateway ignores op %s", op)
        self.emulator.notifier.notify()

    async def _identify(self, connection: Connection, data: Payload) -> None:
        self.identifies.append(data)
        if data.get("token") != self.emulator.token:
            await connection.ws.close(code=4004, message=b"Authentication failed.")
            return
        session = Session(id=f"emulator-session-{p.next_id()}", intents=int(data.get("intents", 0)))
        if self.session is not None and self.session.connection is not None:
            self.session.connection = None
        self.session = session
        session.connection = connection
        connection.session = session
        emulator = self.emulator
        self.dispatch(
            "READY",
            p.ready(
                bot_user=emulator.bot_user,
                session_id=session.id,
                resume_gateway_url=emulator.gateway_url,
                guild_ids=[emulator.guild.id],
                application_id=emulator.application_id,
            ),
        )
        self.dispatch("GUILD_CREATE", emulator.guild.payload())
        self.ready_sent = True

    async def _resume(self, connection: Connection, data: Payload) -> None:
        self.resumes.append(data)
        session = self.session
        if session is None or data.get("session_id") != session.id or data.get("token") != self.emulator.token:
            connection.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        client_seq = int(data.get("seq") or 0)
        for seq, frame in session.buffer:
            if seq > client_seq:
                connection.send(frame)
        session.connection = connection
        connection.session = session
        self.dispatch("RESUMED", {})

    def _members_chunk(self, data: Payload) -> None:
        guild = self.emulator.guild
        wanted = {str(user_id) for user_id in data.get("user_ids") or []}
        members = [m for m in guild.members.values() if not wanted or m["user"]["id"] in wanted]
        chunk: Payload = {
            "guild_id": guild.id,
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": sorted(wanted - {m["user"]["id"] for m in members}),
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        self.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    # ------------------------------------------------------------------------------------------------- dispatching

    def dispatch(self, event: str, data: Payload) -> bool:
        """Send an event to the bot's session (queued for RESUME if it is reconnecting). False if filtered out."""
        session = self.session
        if session is None or not self._wanted(session, event, data):
            return False
        data = self._censor(session, event, data)
        session.seq += 1
        frame = json.dumps({"op": OP_DISPATCH, "d": data, "s": session.seq, "t": event})
        session.buffer.append((session.seq, frame))
        del session.buffer[:-REPLAY_BUFFER]
        if session.connection is not None:
            session.connection.send(frame)
        self.dispatched.append((event, data))
        return True

    def _wanted(self, session: Session, event: str, data: Payload) -> bool:
        if event in _MESSAGE_EVENTS:
            needed = p.INTENT_GUILD_MESSAGES if data.get("guild_id") else p.INTENT_DIRECT_MESSAGES
            return bool(session.intents & needed)
        needed = _EVENT_INTENTS.get(event, 0)
        return not needed or bool(session.intents & needed)

    def _censor(self, session: Session, event: str, data: Payload) -> Payload:
        if event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE") or session.intents & p.INTENT_MESSAGE_CONTENT:
            return data
        bot_id = self.emulator.bot_id
        if not data.get("guild_id") or data.get("author", {}).get("id") == bot_id:
            return data
        if any(user.get("id") == bot_id for user in data.get("mentions", [])):
            return data
        censored: dict[str, Any] = dict(data)
        censored.update(content="", embeds=[], attachments=[], components=[])
        censored.pop("poll", None)
        return censored

    # ------------------------------------------------------------------------------------------------- disruptions

    def send_reconnect(self) -> None:
        """Send op 7 RECONNECT: the client closes the socket and RESUMEs on `resume_gateway_url`."""
        if self.session is None or self.session.connection is None:
            raise RuntimeError("no gateway connection to reconnect")
        self.session.connection.send({"op": OP_RECONNECT, "d": None, "s": None, "t": None})

    def invalidate_session(self, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION (`d: false` → the client re-IDENTIFYs)."""
        if self.session is None or self.session.connection is None:
            raise RuntimeError("no gateway connection")
        self.session.connection.send({"op": OP_INVALID_SESSION, "d": resumable, "s": None, "t": None})

    async def close_connection(self, code: int = 4000) -> None:
        """Close the current socket with `code` (4000 is resumable; 4004/4010-4014 are fatal for discord.py)."""
        if self.session is None or self.session.connection is None:
            raise RuntimeError("no gateway connection")
        await self.session.connection.ws.close(code=code, message=b"closed by the emulator")

    async def close_all(self) -> None:
        for connection in list(self.connections):
            connection.outbox.put_nowait(None)
            with contextlib.suppress(Exception):
                await connection.ws.close(code=1001, message=b"emulator stopping")
