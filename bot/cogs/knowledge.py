"""`/knowledge status | upload | reindex`: what is indexed, adding a document, forcing a rebuild.

`status` answers where questions are answered (`bot.admission`: not in DMs unless `bot.allow_dms`, not in
channels outside `bot.allowed_channels`); it is cheap, so it spends no cooldown token. Uploading and
reindexing change the knowledge folder, so they are for members with Manage Server or a role named (or whose
id is listed) in `bot.knowledge_roles`. An upload is saved into `knowledge/<domain>/` (sanitised name, size and type
limits, no overwrite without `replace`); the watcher indexes it like any dropped file, and the bot edits its
reply once the file is searchable. Saving is `uploads.py`'s business, indexing the engine's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.admission import admit
from bot.domains import domain_choices
from bot.permissions import is_role_id, may_manage_knowledge
from bot.render.status import status_embed
from bot.uploads import safe_filename, save_upload
from rag_engine.records import IndexUpdate

if TYPE_CHECKING:
    from bot.client import RagBot

log = logging.getLogger(__name__)

# How long an upload waits for the watcher to index it before saying it is still being indexed.
INDEX_WAIT_SECONDS = 300.0


def role_label(entry: str) -> str:
    return f"<@&{entry.strip()}>" if is_role_id(entry) else entry


class KnowledgeCog(commands.GroupCog, group_name="knowledge", group_description="The documents the bot answers from"):
    def __init__(self, bot: RagBot) -> None:
        self.bot = bot
        super().__init__()

    async def _permitted(self, interaction: discord.Interaction) -> bool:
        if may_manage_knowledge(interaction.user, self.bot.settings.knowledge_roles):
            return True
        # An id is shown as a role mention: Discord displays the role's name, and nothing pings (the bot sends
        # every message with AllowedMentions.none()).
        roles = ", ".join(role_label(entry) for entry in self.bot.settings.knowledge_roles) or "none configured"
        await interaction.response.send_message(
            f"Only members with Manage Server or one of these roles may change the documents: {roles}.",
            ephemeral=True,
        )
        return False

    @app_commands.command(name="status", description="Files, passages, skipped files and last update per domain")
    async def status(self, interaction: discord.Interaction) -> None:
        if not await admit(interaction, queued=False, cooldown=False):
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        names = self.bot.engine.domains()
        stats = [await asyncio.to_thread(self.bot.engine.domain_stats, name) for name in names]
        await interaction.followup.send(embed=status_embed(stats), ephemeral=True)

    @app_commands.command(name="upload", description="Add a document to a domain (it is indexed automatically)")
    @app_commands.describe(
        file="A .md, .txt, .html or .pdf document",
        domain="The domain folder to put it in",
        replace="Overwrite a document with the same name",
    )
    @app_commands.autocomplete(domain=domain_choices)
    async def upload(
        self, interaction: discord.Interaction, file: discord.Attachment, domain: str, replace: bool = False
    ) -> None:
        if not await self._permitted(interaction):
            return
        self.bot.engine.check_domain(domain)
        limit = self.bot.settings.max_upload_bytes
        if file.size > limit:
            await interaction.response.send_message(
                f"`{file.filename}` is {file.size:,} bytes; the limit is {limit:,}.", ephemeral=True
            )
            return
        # The name is checked before the public "thinking" reply, so a refusal stays ephemeral.
        safe_filename(file.filename, self.bot.config.loading.extensions)
        await interaction.response.defer(thinking=True)
        data = await file.read()
        folder = self.bot.engine.domain_folder(domain)
        indexed = self.bot.next_update(domain)  # registered before the file lands, so the update is not missed
        saved = await asyncio.to_thread(
            save_upload,
            folder,
            file.filename,
            data,
            replace=replace,
            max_bytes=limit,
            extensions=self.bot.config.loading.extensions,
        )
        await interaction.edit_original_response(content=f"Saved `{saved.name}` to **{domain}**; indexing…")
        message = await self._wait_until_searchable(domain, saved.name, indexed)
        await interaction.edit_original_response(content=message)

    async def _wait_until_searchable(self, domain: str, name: str, first: asyncio.Future[IndexUpdate]) -> str:
        """Wait for updates of the domain until one lists the file as indexed (or skipped, with the reason)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + INDEX_WAIT_SECONDS
        waiter = first
        while True:
            try:
                await asyncio.wait_for(waiter, timeout=max(0.0, deadline - loop.time()))
            except TimeoutError:
                return f"Saved `{name}` to **{domain}**; it is still being indexed."
            stats = await asyncio.to_thread(self.bot.engine.domain_stats, domain)
            if name in stats.files:
                return f"✅ `{name}` is indexed in **{domain}** and searchable (index v{stats.version})."
            reason = next((s.reason for s in stats.skipped if s.path == name), None)
            if reason is not None:
                return f"Saved `{name}` to **{domain}**, but it could not be indexed: {reason}."
            waiter = self.bot.next_update(domain)

    @app_commands.command(name="reindex", description="Re-read and re-embed every document of a domain")
    @app_commands.describe(domain="The domain to rebuild")
    @app_commands.autocomplete(domain=domain_choices)
    async def reindex(self, interaction: discord.Interaction, domain: str) -> None:
        if not await self._permitted(interaction):
            return
        self.bot.engine.check_domain(domain)
        await interaction.response.defer(thinking=True)
        update = await asyncio.to_thread(self.bot.engine.index, domain, None, True)
        await interaction.edit_original_response(
            content=(
                f"Rebuilt **{domain}**: {update.passages} passages from {update.added + update.changed} files "
                f"in {update.seconds:.1f} s (index v{update.version})."
            )
        )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(KnowledgeCog(bot))  # type: ignore[arg-type]
