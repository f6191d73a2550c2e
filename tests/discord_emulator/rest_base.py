"""What every REST route shares: `ApiError` (an error answer, maybe a violation), `check_message` (size limits),
the parsed request (`ApiRequest`, `UploadedPart`), `json_response`, and `RouteHandlers`, the base of the
route-handler mixins with the upload handling that channel messages and interaction responses both need.

Not here: the route table and the request plumbing (rest.py) or any route handler (rest_guild.py,
rest_channels.py, rest_interactions.py). These names are re-exported from rest.py, where they were first defined.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import rules
from .payloads import Payload
from .records import FileRecord, InteractionRecord

if TYPE_CHECKING:
    from .server import DiscordEmulator

API_PREFIX = "/api/v10"
# A handler returns this for 204 No Content (None would be a JSON `null` body).
NO_CONTENT = object()


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


class RouteHandlers:
    """Base of the route-handler mixins that `RestApi` (rest.py) combines: the emulator they answer for, and
    `new_files`, because channel messages and interaction responses take uploads the same way."""

    emu: DiscordEmulator  # set by RestApi.__init__

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
