"""Factories for every Discord payload the emulator sends, plus the snowflake generator.

All gateway and REST payloads are built here so that the fields discord.py requires are never missing (a missing
key in a gateway dispatch raises inside discord.py's parser and kills `client.start()`). Payloads are plain
JSON-ready dicts; ids are strings, as on the wire.

Field lists follow the Discord API documentation and the parsers of discord.py 2.7 (`Guild._from_data`,
`Message.__init__`, `Interaction._from_data`, `app_commands.Namespace`).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Payload = dict[str, Any]

DISCORD_EPOCH_MS = 1_420_070_400_000

# Gateway intents (bit flags sent in IDENTIFY).
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15

# Permission bits used by the defaults.
PERM_CREATE_INSTANT_INVITE = 1 << 0
PERM_ADMINISTRATOR = 1 << 3
PERM_MANAGE_CHANNELS = 1 << 4
PERM_MANAGE_GUILD = 1 << 5
PERM_ADD_REACTIONS = 1 << 6
PERM_VIEW_CHANNEL = 1 << 10
PERM_SEND_MESSAGES = 1 << 11
PERM_MANAGE_MESSAGES = 1 << 13
PERM_EMBED_LINKS = 1 << 14
PERM_ATTACH_FILES = 1 << 15
PERM_READ_MESSAGE_HISTORY = 1 << 16
PERM_MENTION_EVERYONE = 1 << 17
PERM_USE_EXTERNAL_EMOJIS = 1 << 18
PERM_CHANGE_NICKNAME = 1 << 26
PERM_USE_APPLICATION_COMMANDS = 1 << 31
PERM_SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 53) - 1

DEFAULT_EVERYONE_PERMISSIONS = (
    PERM_CREATE_INSTANT_INVITE
    | PERM_ADD_REACTIONS
    | PERM_VIEW_CHANNEL
    | PERM_SEND_MESSAGES
    | PERM_EMBED_LINKS
    | PERM_ATTACH_FILES
    | PERM_READ_MESSAGE_HISTORY
    | PERM_USE_EXTERNAL_EMOJIS
    | PERM_CHANGE_NICKNAME
    | PERM_USE_APPLICATION_COMMANDS
    | PERM_SEND_MESSAGES_IN_THREADS
)
DEFAULT_BOT_PERMISSIONS = DEFAULT_EVERYONE_PERMISSIONS | PERM_MANAGE_MESSAGES

# Channel types.
CHANNEL_GUILD_TEXT = 0
CHANNEL_DM = 1

# Message types.
MESSAGE_DEFAULT = 0
MESSAGE_REPLY = 19
MESSAGE_CHAT_INPUT_COMMAND = 20

# Message flags.
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_IS_COMPONENTS_V2 = 1 << 15

# Interaction types.
INTERACTION_PING = 1
INTERACTION_APPLICATION_COMMAND = 2
INTERACTION_MESSAGE_COMPONENT = 3
INTERACTION_AUTOCOMPLETE = 4
INTERACTION_MODAL_SUBMIT = 5

# Interaction callback types.
CALLBACK_PONG = 1
CALLBACK_CHANNEL_MESSAGE = 4
CALLBACK_DEFERRED_CHANNEL_MESSAGE = 5
CALLBACK_DEFERRED_UPDATE_MESSAGE = 6
CALLBACK_UPDATE_MESSAGE = 7
CALLBACK_AUTOCOMPLETE_RESULT = 8
CALLBACK_MODAL = 9

# Application command option types.
OPTION_SUB_COMMAND = 1
OPTION_SUB_COMMAND_GROUP = 2
OPTION_STRING = 3
OPTION_INTEGER = 4
OPTION_BOOLEAN = 5
OPTION_USER = 6
OPTION_CHANNEL = 7
OPTION_ROLE = 8
OPTION_MENTIONABLE = 9
OPTION_NUMBER = 10
OPTION_ATTACHMENT = 11

# Component types.
COMPONENT_ACTION_ROW = 1
COMPONENT_BUTTON = 2
COMPONENT_STRING_SELECT = 3

DEFAULT_ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


class SnowflakeGenerator:
    """Time-based, strictly increasing Discord snowflakes, returned as strings.

    `(milliseconds since 2015-01-01) << 22 | worker << 17 | process << 12 | increment`, so `created_at` of every
    object discord.py builds is the real creation time.
    """

    def __init__(self, worker: int = 1, process: int = 0, clock: Callable[[], float] = time.time) -> None:
        self._prefix = (worker & 0x1F) << 17 | (process & 0x1F) << 12
        self._clock = clock
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            ms = int(self._clock() * 1000) - DISCORD_EPOCH_MS
            value = ms << 22 | self._prefix
            if value <= self._last:
                value = self._last + 1
            self._last = value
            return str(value)


next_id = SnowflakeGenerator()
_token_counter = itertools.count(1)


def snowflake_time(snowflake: str | int) -> datetime:
    """The creation time encoded in a snowflake."""
    ms = (int(snowflake) >> 22) + DISCORD_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def iso_now() -> str:
    """The current time as the ISO 8601 string Discord uses for timestamps."""
    return datetime.now(UTC).isoformat()


def interaction_token() -> str:
    """A unique, opaque interaction token."""
    return f"emulator-interaction-token-{next(_token_counter)}-{next_id()}"


# --------------------------------------------------------------------------------------------------- users, guilds


def user(
    username: str = "alice",
    *,
    id: str | None = None,
    bot: bool = False,
    global_name: str | None = None,
    avatar: str | None = None,
) -> Payload:
    """A user object (`BaseUser._update`: id, username, discriminator, avatar are required)."""
    return {
        "id": id or next_id(),
        "username": username,
        "discriminator": "0",
        "global_name": global_name,
        "avatar": avatar,
        "banner": None,
        "accent_color": None,
        "bot": bot,
        "system": False,
        "public_flags": 0,
        "flags": 0,
    }


def role(
    guild_id: str,
    name: str,
    *,
    id: str | None = None,
    permissions: int = 0,
    position: int = 1,
    color: int = 0,
    hoist: bool = False,
    mentionable: bool = False,
    managed: bool = False,
) -> Payload:
    """A role object. `permissions` is sent as a decimal string, as Discord does."""
    return {
        "id": id or next_id(),
        "name": name,
        "permissions": str(permissions),
        "position": position,
        "color": color,
        "colors": {"primary_color": color, "secondary_color": None, "tertiary_color": None},
        "hoist": hoist,
        "managed": managed,
        "mentionable": mentionable,
        "icon": None,
        "unicode_emoji": None,
        "flags": 0,
    }


def everyone_role(guild_id: str, permissions: int = DEFAULT_EVERYONE_PERMISSIONS) -> Payload:
    """The @everyone role: its id is the guild id (discord.py's permission math relies on it)."""
    return role(guild_id, "@everyone", id=guild_id, permissions=permissions, position=0)


def member(
    member_user: Payload,
    *,
    roles: Iterable[str] = (),
    nick: str | None = None,
    joined_at: str | None = None,
    permissions: int | None = None,
) -> Payload:
    """A guild member with its nested user (`Member.__init__` needs user, roles, flags)."""
    data: Payload = {
        "user": member_user,
        "roles": list(roles),
        "nick": nick,
        "avatar": None,
        "banner": None,
        "joined_at": joined_at or iso_now(),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "flags": 0,
        "communication_disabled_until": None,
    }
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def partial_member(full_member: Payload, *, permissions: int | None = None) -> Payload:
    """A member without its `user` key, as nested in MESSAGE_CREATE and in `resolved.members`."""
    data = {key: value for key, value in full_member.items() if key != "user"}
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def text_channel(
    guild_id: str,
    name: str,
    *,
    id: str | None = None,
    position: int = 0,
    topic: str | None = None,
    parent_id: str | None = None,
    nsfw: bool = False,
    rate_limit_per_user: int = 0,
    permission_overwrites: Sequence[Payload] = (),
) -> Payload:
    """A guild text channel (`TextChannel._update`: id, type, name, position)."""
    return {
        "id": id or next_id(),
        "type": CHANNEL_GUILD_TEXT,
        "guild_id": guild_id,
        "name": name,
        "position": position,
        "topic": topic,
        "parent_id": parent_id,
        "nsfw": nsfw,
        "rate_limit_per_user": rate_limit_per_user,
        "last_message_id": None,
        "permission_overwrites": list(permission_overwrites),
        "flags": 0,
    }


def dm_channel(recipient: Payload, *, id: str | None = None) -> Payload:
    """A direct-message channel with one recipient."""
    return {"id": id or next_id(), "type": CHANNEL_DM, "recipients": [recipient], "last_message_id": None, "flags": 0}


def guild(
    *,
    id: str,
    name: str,
    owner_id: str,
    roles: Sequence[Payload],
    channels: Sequence[Payload],
    members: Sequence[Payload],
    large: bool = False,
) -> Payload:
    """A full guild as sent in GUILD_CREATE.

    `member_count == len(members)` so discord.py considers the guild chunked and never sends REQUEST_GUILD_MEMBERS.
    """
    return {
        "id": id,
        "name": name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": owner_id,
        "unavailable": False,
        "member_count": len(members),
        "large": large,
        "joined_at": iso_now(),
        "features": [],
        "roles": list(roles),
        "channels": list(channels),
        "members": list(members),
        "threads": [],
        "emojis": [],
        "stickers": [],
        "presences": [],
        "voice_states": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "preferred_locale": "en-US",
        "verification_level": 0,
        "default_message_notifications": 1,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "afk_timeout": 300,
        "afk_channel_id": None,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "max_members": 500000,
        "vanity_url_code": None,
    }


def application(app_id: str, name: str, owner: Payload, *, bot_user: Payload | None = None) -> Payload:
    """The application object of `GET /oauth2/applications/@me` (`AppInfo.__init__`)."""
    data: Payload = {
        "id": app_id,
        "name": name,
        "description": "",
        "icon": None,
        "bot_public": True,
        "bot_require_code_grant": False,
        "owner": owner,
        "verify_key": "0" * 64,
        "flags": 0,
        "team": None,
        "summary": "",
        "tags": [],
        "redirect_uris": [],
        "interactions_endpoint_url": None,
    }
    if bot_user is not None:
        data["bot"] = bot_user
    return data


def ready(
    *,
    bot_user: Payload,
    session_id: str,
    resume_gateway_url: str,
    guild_ids: Iterable[str],
    application_id: str,
) -> Payload:
    """READY dispatch data (`session_id` and `resume_gateway_url` are read unconditionally by discord.py)."""
    return {
        "v": 10,
        "user": bot_user,
        "session_id": session_id,
        "session_type": "normal",
        "resume_gateway_url": resume_gateway_url,
        "guilds": [{"id": guild_id, "unavailable": True} for guild_id in guild_ids],
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "user_settings": {},
        "application": {"id": application_id, "flags": 0},
    }


# ------------------------------------------------------------------------------------------------------- messages


def attachment(
    filename: str,
    size: int,
    url: str,
    *,
    id: str | None = None,
    content_type: str | None = None,
    description: str | None = None,
    ephemeral: bool = False,
) -> Payload:
    """An attachment object (`Attachment.__init__`: id, size, filename, url, proxy_url)."""
    data: Payload = {"id": id or next_id(), "filename": filename, "size": size, "url": url, "proxy_url": url}
    if content_type is not None:
        data["content_type"] = content_type
    if description is not None:
        data["description"] = description
    if ephemeral:
        data["ephemeral"] = True
    return data


def message(
    *,
    channel_id: str,
    author: Payload,
    content: str = "",
    id: str | None = None,
    guild_id: str | None = None,
    member: Payload | None = None,
    mentions: Sequence[Payload] = (),
    mention_roles: Sequence[str] = (),
    mention_everyone: bool = False,
    attachments: Sequence[Payload] = (),
    embeds: Sequence[Payload] = (),
    components: Sequence[Payload] = (),
    type: int = MESSAGE_DEFAULT,
    flags: int = 0,
    timestamp: str | None = None,
    edited_timestamp: str | None = None,
    tts: bool = False,
    pinned: bool = False,
    nonce: str | int | None = None,
    webhook_id: str | None = None,
    application_id: str | None = None,
    message_reference: Payload | None = None,
    referenced_message: Payload | None = None,
    interaction_metadata: Payload | None = None,
    reactions: Sequence[Payload] = (),
) -> Payload:
    """A full message object, as in MESSAGE_CREATE / MESSAGE_UPDATE and REST responses.

    `mentions` and `components` are always present (a missing key leaves an unset slot on `discord.Message`);
    `member` must be a partial member (no `user`) with `roles` and `flags`, else the author stays a `User`.
    """
    data: Payload = {
        "id": id or next_id(),
        "channel_id": channel_id,
        "type": type,
        "content": content,
        "author": author,
        "mentions": list(mentions),
        "mention_roles": list(mention_roles),
        "mention_everyone": mention_everyone,
        "attachments": list(attachments),
        "embeds": list(embeds),
        "components": list(components),
        "timestamp": timestamp or iso_now(),
        "edited_timestamp": edited_timestamp,
        "tts": tts,
        "pinned": pinned,
        "flags": flags,
        "reactions": list(reactions),
    }
    if guild_id is not None:
        data["guild_id"] = guild_id
    if member is not None:
        data["member"] = member
    if nonce is not None:
        data["nonce"] = nonce
    if webhook_id is not None:
        data["webhook_id"] = webhook_id
    if application_id is not None:
        data["application_id"] = application_id
    if message_reference is not None:
        data["message_reference"] = message_reference
        data["referenced_message"] = referenced_message
    if interaction_metadata is not None:
        data["interaction_metadata"] = interaction_metadata
    return data


def message_reference(message_id: str, channel_id: str, guild_id: str | None = None) -> Payload:
    """A reply reference (type 0 = default reference)."""
    data: Payload = {"type": 0, "message_id": message_id, "channel_id": channel_id, "fail_if_not_exists": True}
    if guild_id is not None:
        data["guild_id"] = guild_id
    return data


def interaction_metadata(
    interaction_id: str,
    interaction_type: int,
    interaction_user: Payload,
    *,
    guild_id: str | None = None,
    name: str | None = None,
    interacted_message_id: str | None = None,
    original_response_message_id: str | None = None,
) -> Payload:
    """`interaction_metadata` of a message created by an interaction response (`MessageInteractionMetadata`)."""
    data: Payload = {
        "id": interaction_id,
        "type": interaction_type,
        "user": interaction_user,
        "authorizing_integration_owners": {"0": guild_id} if guild_id else {},
    }
    if name is not None:
        data["name"] = name
    if interacted_message_id is not None:
        data["interacted_message_id"] = interacted_message_id
    if original_response_message_id is not None:
        data["original_response_message_id"] = original_response_message_id
    return data


# --------------------------------------------------------------------------------------------- command options


@dataclass(frozen=True)
class FileUpload:
    """A file a simulated user uploads (message attachment or attachment option)."""

    filename: str
    data: bytes
    content_type: str | None = None
    description: str | None = None


@dataclass
class Resolved:
    """Accumulates the `data.resolved` map of an application command interaction."""

    users: dict[str, Payload] = field(default_factory=dict)
    members: dict[str, Payload] = field(default_factory=dict)
    roles: dict[str, Payload] = field(default_factory=dict)
    channels: dict[str, Payload] = field(default_factory=dict)
    attachments: dict[str, Payload] = field(default_factory=dict)
    messages: dict[str, Payload] = field(default_factory=dict)

    def to_payload(self) -> Payload | None:
        data = {key: value for key, value in vars(self).items() if value}
        return data or None


def resolved_channel(channel: Payload, permissions: int = ALL_PERMISSIONS) -> Payload:
    """The partial channel of `resolved.channels`."""
    data: Payload = {
        "id": channel["id"],
        "type": channel["type"],
        "name": channel.get("name"),
        "permissions": str(permissions),
    }
    if channel.get("parent_id") is not None:
        data["parent_id"] = channel["parent_id"]
    return data


def infer_option_type(value: Any) -> int:
    """The option type of a Python value when the command's declaration is unknown."""
    if isinstance(value, bool):
        return OPTION_BOOLEAN
    if isinstance(value, int):
        return OPTION_INTEGER
    if isinstance(value, float):
        return OPTION_NUMBER
    if isinstance(value, str):
        return OPTION_STRING
    if isinstance(value, Mapping):
        if "filename" in value and "url" in value:
            return OPTION_ATTACHMENT
        if "username" in value:
            return OPTION_USER
        if "type" in value and "name" in value:
            return OPTION_CHANNEL
        if "permissions" in value:
            return OPTION_ROLE
    raise TypeError(f"cannot infer an option type for {value!r}")


def command_option(
    name: str,
    value: Any,
    resolved: Resolved,
    *,
    type: int | None = None,
    members: Mapping[str, Payload] | None = None,
    member_permissions: Callable[[str], int] | None = None,
    focused: bool = False,
) -> Payload:
    """One leaf option `{name, type, value}`; snowflake options add their object to `resolved`.

    USER values are user payloads (their guild member is looked up in `members`), CHANNEL/ROLE values are channel/role
    payloads, ATTACHMENT values are attachment payloads. Plain ids are accepted too (then nothing is resolved).
    """
    option_type = type if type is not None else infer_option_type(value)
    option: Payload = {"name": name, "type": option_type}
    if option_type in (OPTION_USER, OPTION_CHANNEL, OPTION_ROLE, OPTION_MENTIONABLE, OPTION_ATTACHMENT) and isinstance(
        value, Mapping
    ):
        obj = dict(value)
        object_id = str(obj["id"])
        kind = option_type
        if option_type == OPTION_MENTIONABLE:
            kind = OPTION_USER if "username" in obj else OPTION_ROLE
        if kind == OPTION_USER:
            resolved.users[object_id] = obj
            full = (members or {}).get(object_id)
            if full is not None:
                perms = member_permissions(object_id) if member_permissions else None
                resolved.members[object_id] = partial_member(full, permissions=perms)
        elif kind == OPTION_CHANNEL:
            resolved.channels[object_id] = resolved_channel(obj)
        elif kind == OPTION_ROLE:
            resolved.roles[object_id] = obj
        else:
            resolved.attachments[object_id] = obj
        option["value"] = object_id
    else:
        option["value"] = value
    if focused:
        option["focused"] = True
    return option


def nest_options(options: list[Payload], *, subcommand: str | None = None, group: str | None = None) -> list[Payload]:
    """Wrap leaf options in a subcommand (type 1) and optionally a subcommand group (type 2)."""
    if subcommand is None:
        if group is not None:
            raise ValueError("a subcommand group needs a subcommand")
        return options
    nested: list[Payload] = [{"name": subcommand, "type": OPTION_SUB_COMMAND, "options": options}]
    if group is not None:
        nested = [{"name": group, "type": OPTION_SUB_COMMAND_GROUP, "options": nested}]
    return nested


def command_data(
    name: str,
    *,
    options: Sequence[Payload] = (),
    resolved: Resolved | None = None,
    command_id: str | None = None,
    command_guild_id: str | None = None,
    command_type: int = 1,
    target_id: str | None = None,
) -> Payload:
    """`data` of an APPLICATION_COMMAND or AUTOCOMPLETE interaction.

    `command_guild_id` must be set iff the command was registered guild-scoped (discord.py looks the command up in
    that guild's tree, else in the global tree).
    """
    data: Payload = {"id": command_id or next_id(), "name": name, "type": command_type}
    if options:
        data["options"] = list(options)
    resolved_payload = resolved.to_payload() if resolved is not None else None
    if resolved_payload:
        data["resolved"] = resolved_payload
    if command_guild_id is not None:
        data["guild_id"] = command_guild_id
    if target_id is not None:
        data["target_id"] = target_id
    return data


# ---------------------------------------------------------------------------------------------------- interactions


def interaction(
    *,
    type: int,
    data: Payload | None,
    application_id: str,
    channel: Payload,
    user: Payload,
    member: Payload | None = None,
    guild_id: str | None = None,
    message: Payload | None = None,
    id: str | None = None,
    token: str | None = None,
    member_permissions: int = 0,
    app_permissions: int = DEFAULT_BOT_PERMISSIONS,
    locale: str = "en-US",
    attachment_size_limit: int = DEFAULT_ATTACHMENT_SIZE_LIMIT,
) -> Payload:
    """The INTERACTION_CREATE envelope (`Interaction._from_data`).

    Required by discord.py: id, type, token, version, application_id, attachment_size_limit. In guilds it carries
    `guild_id`, the full `channel` object (discord.py ignores `channel_id`) and `member` with `permissions`; in DMs
    it carries `user`.
    """
    payload: Payload = {
        "id": id or next_id(),
        "application_id": application_id,
        "type": type,
        "token": token or interaction_token(),
        "version": 1,
        "channel": channel,
        "channel_id": channel["id"],
        "locale": locale,
        "app_permissions": str(app_permissions),
        "entitlements": [],
        "attachment_size_limit": attachment_size_limit,
    }
    if data is not None:
        payload["data"] = data
    if guild_id is not None:
        if member is None:
            raise ValueError("a guild interaction needs the member payload")
        payload["guild_id"] = guild_id
        payload["guild"] = {"id": guild_id, "locale": locale, "features": []}
        payload["guild_locale"] = locale
        payload["member"] = partial_member(member, permissions=member_permissions) | {"user": user}
        payload["authorizing_integration_owners"] = {"0": guild_id}
        payload["context"] = 0
    else:
        payload["user"] = user
        payload["authorizing_integration_owners"] = {"0": "0"}
        payload["context"] = 1
    if message is not None:
        payload["message"] = message
    return payload


def slash_command_interaction(
    name: str,
    *,
    application_id: str,
    channel: Payload,
    user: Payload,
    options: Sequence[Payload] = (),
    resolved: Resolved | None = None,
    command_id: str | None = None,
    command_guild_id: str | None = None,
    **envelope: Any,
) -> Payload:
    """A CHAT_INPUT application command (interaction type 2). Build `options` with `command_option`/`nest_options`."""
    data = command_data(
        name, options=options, resolved=resolved, command_id=command_id, command_guild_id=command_guild_id
    )
    return interaction(
        type=INTERACTION_APPLICATION_COMMAND,
        data=data,
        application_id=application_id,
        channel=channel,
        user=user,
        **envelope,
    )


def autocomplete_interaction(
    name: str,
    *,
    application_id: str,
    channel: Payload,
    user: Payload,
    options: Sequence[Payload],
    command_id: str | None = None,
    command_guild_id: str | None = None,
    **envelope: Any,
) -> Payload:
    """An AUTOCOMPLETE interaction (type 4). Exactly one leaf option must carry `focused: true`."""
    focused = [option for option in _walk_leaf_options(options) if option.get("focused")]
    if len(focused) != 1:
        raise ValueError("an autocomplete interaction needs exactly one focused option")
    data = command_data(name, options=options, command_id=command_id, command_guild_id=command_guild_id)
    return interaction(
        type=INTERACTION_AUTOCOMPLETE,
        data=data,
        application_id=application_id,
        channel=channel,
        user=user,
        **envelope,
    )


def component_interaction(
    *,
    message: Payload,
    custom_id: str,
    application_id: str,
    channel: Payload,
    user: Payload,
    component_type: int = COMPONENT_BUTTON,
    values: Sequence[str] | None = None,
    **envelope: Any,
) -> Payload:
    """A MESSAGE_COMPONENT interaction (type 3) carrying the full message the component is attached to."""
    data: Payload = {"custom_id": custom_id, "component_type": component_type}
    if values is not None:
        data["values"] = list(values)
    return interaction(
        type=INTERACTION_MESSAGE_COMPONENT,
        data=data,
        application_id=application_id,
        channel=channel,
        user=user,
        message=message,
        **envelope,
    )


def _walk_leaf_options(options: Iterable[Payload]) -> Iterable[Payload]:
    for option in options:
        if option.get("type") in (OPTION_SUB_COMMAND, OPTION_SUB_COMMAND_GROUP):
            yield from _walk_leaf_options(option.get("options", []))
        else:
            yield option


def walk_components(components: Iterable[Payload]) -> Iterable[Payload]:
    """Every component, depth first (action rows, then their children; also v2 containers/sections)."""
    for component in components:
        yield component
        yield from walk_components(component.get("components", []))
        accessory = component.get("accessory")
        if isinstance(accessory, dict):
            yield accessory
