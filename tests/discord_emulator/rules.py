"""The Discord rules the emulator enforces on what the bot sends: size limits, empty messages, allowed mentions.

Validation returns `FieldError`s; `invalid_form_body` turns them into Discord's 50035 error body with nested
`errors` (e.g. `{"embeds": {"0": {"fields": {"3": {"value": {"_errors": [...]}}}}}}`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from . import payloads as p
from .payloads import Payload

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TITLE = 256
MAX_EMBED_DESCRIPTION = 4096
MAX_EMBED_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_AUTHOR = 256
MAX_EMBED_TOTAL = 6000
MAX_FILES = 10
MAX_ACTION_ROWS = 5
MAX_ROW_BUTTONS = 5
MAX_BUTTON_LABEL = 80
MAX_CUSTOM_ID = 100
MAX_CHOICES = 25
MAX_CHOICE_NAME = 100
MAX_CHOICE_VALUE = 100

ERROR_INVALID_FORM_BODY = 50035
ERROR_EMPTY_MESSAGE = 50006
ERROR_UNKNOWN_INTERACTION = 10062
ERROR_ALREADY_ACKNOWLEDGED = 40060
ERROR_UNKNOWN_WEBHOOK = 10015
ERROR_UNKNOWN_MESSAGE = 10008
ERROR_UNKNOWN_CHANNEL = 10003
ERROR_UNKNOWN_USER = 10013
ERROR_UNKNOWN_MEMBER = 10007
ERROR_CANNOT_EDIT_OTHERS = 50005
ERROR_ENTITY_TOO_LARGE = 40005

USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")
EVERYONE_MENTION = re.compile(r"@(everyone|here)\b")


@dataclass(frozen=True)
class FieldError:
    """One invalid field: `path` from the request body root, Discord's error code and message."""

    path: tuple[str, ...]
    code: str
    message: str

    def describe(self) -> str:
        return f"{'.'.join(self.path) or '<body>'}: {self.message}"


def _max_length(path: tuple[str, ...], value: Any, limit: int) -> list[FieldError]:
    if isinstance(value, str) and len(value) > limit:
        return [FieldError(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")]
    return []


def _required_text(path: tuple[str, ...], value: Any, limit: int) -> list[FieldError]:
    if not isinstance(value, str) or not value.strip():
        return [FieldError(path, "BASE_TYPE_REQUIRED", "This field is required")]
    return _max_length(path, value, limit)


def embed_length(embed: Payload) -> int:
    """Characters that count toward the 6000 total: title, description, field names/values, footer, author."""
    total = len(embed.get("title") or "") + len(embed.get("description") or "")
    for embed_field in embed.get("fields") or []:
        total += len(embed_field.get("name") or "") + len(embed_field.get("value") or "")
    total += len((embed.get("footer") or {}).get("text") or "")
    total += len((embed.get("author") or {}).get("name") or "")
    return total


def validate_embeds(embeds: Sequence[Payload], prefix: tuple[str, ...] = ()) -> list[FieldError]:
    errors: list[FieldError] = []
    if len(embeds) > MAX_EMBEDS:
        errors.append(
            FieldError((*prefix, "embeds"), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")
        )
    for index, embed in enumerate(embeds):
        at = (*prefix, "embeds", str(index))
        errors += _max_length((*at, "title"), embed.get("title"), MAX_EMBED_TITLE)
        errors += _max_length((*at, "description"), embed.get("description"), MAX_EMBED_DESCRIPTION)
        fields = embed.get("fields") or []
        if len(fields) > MAX_EMBED_FIELDS:
            errors.append(
                FieldError((*at, "fields"), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBED_FIELDS} or fewer in length.")
            )
        for field_index, embed_field in enumerate(fields):
            errors += _required_text((*at, "fields", str(field_index), "name"), embed_field.get("name"), MAX_FIELD_NAME)
            errors += _required_text(
                (*at, "fields", str(field_index), "value"), embed_field.get("value"), MAX_FIELD_VALUE
            )
        footer = embed.get("footer")
        if footer:
            errors += _max_length((*at, "footer", "text"), footer.get("text"), MAX_FOOTER)
        author = embed.get("author")
        if author:
            errors += _max_length((*at, "author", "name"), author.get("name"), MAX_AUTHOR)
    total = sum(embed_length(embed) for embed in embeds)
    if total > MAX_EMBED_TOTAL:
        errors.append(
            FieldError(
                (*prefix, "embeds"),
                "MAX_EMBED_SIZE_EXCEEDED",
                f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL} ({total})",
            )
        )
    return errors


def validate_components(components: Sequence[Payload], flags: int, prefix: tuple[str, ...] = ()) -> list[FieldError]:
    errors: list[FieldError] = []
    if flags & p.FLAG_IS_COMPONENTS_V2:
        return errors  # layout components follow different limits; not checked
    if len(components) > MAX_ACTION_ROWS:
        errors.append(
            FieldError(
                (*prefix, "components"), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ACTION_ROWS} or fewer in length."
            )
        )
    for row_index, row in enumerate(components):
        at = (*prefix, "components", str(row_index))
        if row.get("type") != p.COMPONENT_ACTION_ROW:
            errors.append(FieldError((*at, "type"), "COMPONENT_LAYOUT_INVALID", "Top-level components must be rows"))
            continue
        children = row.get("components") or []
        if not children or len(children) > MAX_ROW_BUTTONS:
            errors.append(
                FieldError((*at, "components"), "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_ROW_BUTTONS}")
            )
        selects = [child for child in children if child.get("type") != p.COMPONENT_BUTTON]
        if selects and len(children) > 1:
            errors.append(FieldError((*at, "components"), "COMPONENT_LAYOUT_WIDTH_EXCEEDED", "Row is full"))
        for child_index, child in enumerate(children):
            child_at = (*at, "components", str(child_index))
            errors += _max_length((*child_at, "label"), child.get("label"), MAX_BUTTON_LABEL)
            errors += _max_length((*child_at, "custom_id"), child.get("custom_id"), MAX_CUSTOM_ID)
    custom_ids = [c["custom_id"] for c in p.walk_components(components) if c.get("custom_id")]
    if len(custom_ids) != len(set(custom_ids)):
        errors.append(FieldError((*prefix, "components"), "COMPONENT_CUSTOM_ID_DUPLICATED", "Duplicate custom_id"))
    return errors


def validate_message(
    body: Payload, *, file_count: int, prefix: tuple[str, ...] = (), check_empty: bool = True
) -> tuple[list[FieldError], bool]:
    """Check a message body (create or the merged result of an edit). Returns (field errors, is_empty)."""
    errors: list[FieldError] = []
    content = body.get("content") or ""
    errors += _max_length((*prefix, "content"), content, MAX_CONTENT)
    embeds = body.get("embeds") or []
    errors += validate_embeds(embeds, prefix)
    components = body.get("components") or []
    errors += validate_components(components, int(body.get("flags") or 0), prefix)
    if file_count > MAX_FILES:
        errors.append(
            FieldError((*prefix, "attachments"), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FILES} or fewer in length.")
        )
    allowed = body.get("allowed_mentions")
    if isinstance(allowed, dict):
        parse = allowed.get("parse") or []
        for kind in ("users", "roles"):
            if kind in parse and allowed.get(kind):
                errors.append(
                    FieldError(
                        (*prefix, "allowed_mentions"),
                        "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                        f'parse:["{kind}"] and {kind}: [ids] are mutually exclusive.',
                    )
                )
    empty = (
        check_empty
        and not content.strip()
        and not embeds
        and not components
        and file_count == 0
        and not body.get("sticker_ids")
        and not body.get("poll")
    )
    return errors, empty


def validate_choices(choices: Any) -> list[FieldError]:
    prefix = ("data", "choices")
    if not isinstance(choices, list):
        return [FieldError(prefix, "BASE_TYPE_REQUIRED", "This field is required")]
    errors: list[FieldError] = []
    if len(choices) > MAX_CHOICES:
        errors.append(FieldError(prefix, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer in length."))
    for index, choice in enumerate(choices):
        name = choice.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_CHOICE_NAME:
            errors.append(
                FieldError(
                    (*prefix, str(index), "name"),
                    "BASE_TYPE_BAD_LENGTH",
                    f"Must be between 1 and {MAX_CHOICE_NAME} in length.",
                )
            )
        value = choice.get("value")
        if isinstance(value, str) and len(value) > MAX_CHOICE_VALUE:
            errors.append(
                FieldError(
                    (*prefix, str(index), "value"),
                    "BASE_TYPE_MAX_LENGTH",
                    f"Must be {MAX_CHOICE_VALUE} or fewer in length.",
                )
            )
    return errors


def invalid_form_body(errors: Iterable[FieldError]) -> Payload:
    """Discord's 400 body for field errors (code 50035, nested `errors`)."""
    tree: dict[str, Any] = {}
    for error in errors:
        node = tree
        for part in error.path:
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": error.code, "message": error.message})
    return {"code": ERROR_INVALID_FORM_BODY, "message": "Invalid Form Body", "errors": tree}


def error_body(code: int, message: str) -> Payload:
    return {"code": code, "message": message}


def mention_violation(content: str, allowed_mentions: Payload | None, *, is_reply: bool) -> str | None:
    """Why this message would ping someone, or None.

    Pings come from Discord's defaults (no `allowed_mentions`: every mention in the content and the replied-to
    author ping) or from `parse` categories that match mentions in the content. Ids listed explicitly in
    `allowed_mentions.users/roles` and `replied_user: true` are deliberate and not reported.
    """
    users = USER_MENTION.findall(content)
    roles = ROLE_MENTION.findall(content)
    everyone = EVERYONE_MENTION.findall(content)
    if allowed_mentions is None:
        kinds = []
        if users:
            kinds.append(f"users {users}")
        if roles:
            kinds.append(f"roles {roles}")
        if everyone:
            kinds.append("@" + "/@".join(sorted(set(everyone))))
        if is_reply:
            kinds.append("the replied-to author")
        if kinds:
            return "no allowed_mentions, so Discord would ping " + ", ".join(kinds)
        return None
    parse = set(allowed_mentions.get("parse") or [])
    pinged = []
    if users and "users" in parse:
        pinged.append(f"users {users}")
    if roles and "roles" in parse:
        pinged.append(f"roles {roles}")
    if everyone and "everyone" in parse:
        pinged.append("@" + "/@".join(sorted(set(everyone))))
    if pinged:
        return f"allowed_mentions parse={sorted(parse)} lets Discord ping " + ", ".join(pinged)
    return None
