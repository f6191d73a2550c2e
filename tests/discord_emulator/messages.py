"""The messages layer of `DiscordEmulator` (see base.py for the layers): the records of what the bot sent and
edited (validated, with edit history and MESSAGE_CREATE / MESSAGE_UPDATE / MESSAGE_DELETE dispatches), their
Discord payloads, stored and downloadable files, and users posting messages.

Not here: the REST routes that call into this (rest_channels.py, rest_interactions.py), the limits a message must
respect (rules.py), and waiting for messages (waiting.py).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from aiohttp import web

from . import payloads as p
from . import rules
from .payloads import FileUpload, Payload
from .records import FileRecord, InteractionRecord, MessageRecord, Revision
from .rest_base import check_message
from .world import ChannelRef, MessageRef, Upload, UserRef, WorldLayer


class MessagesLayer(WorldLayer):
    """Message and file records of `DiscordEmulator`."""

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
