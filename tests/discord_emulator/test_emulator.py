"""The emulator against the real discord.py client over loopback sockets.

A small `commands.Bot` defined here exercises every flow the ragscope bot uses: on_ready, a mention reply,
app command sync (global and guild), a deferred slash command that edits its response and sends a followup with a
file and an embed, an attachment option read over HTTP, autocomplete, a button view, RESUME. Rule checks: the 3 s
deadline, double acknowledgement, size limits, allowed mentions, 429 retries. Waits go through the emulator's
helpers (no sleeps in the tests; the bot under test sleeps where a slow bot is the point).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from . import payloads as p
from .fixtures import running_bot
from .payloads import FileUpload
from .records import ClientCrashed, EmulatorTimeout, MessageRecord
from .server import DiscordEmulator

STREAM_PARTS = ("The zorblat", "The zorblat lives", "The zorblat lives in Quenth.")


class Outcomes:
    """What the bot under test observed (exceptions it caught, bytes it read)."""

    def __init__(self) -> None:
        self.errors: dict[str, discord.HTTPException] = {}
        self.attachments: list[bytes] = []
        self.seen_content: list[str] = []
        self.event = asyncio.Event()


def make_bot(emu: DiscordEmulator, *, message_content: bool = True) -> tuple[commands.Bot, Outcomes]:
    intents = discord.Intents.default()
    intents.message_content = message_content
    bot = commands.Bot(
        command_prefix=commands.when_mentioned,
        intents=intents,
        allowed_mentions=discord.AllowedMentions.none(),
        guild_ready_timeout=0.05,
    )
    outcomes = Outcomes()
    guild = discord.Object(int(emu.guild.id))

    @bot.tree.command(description="Stream an answer")
    async def stream(interaction: discord.Interaction, prompt: str) -> None:
        await interaction.response.defer(thinking=True)
        for part in STREAM_PARTS:
            await interaction.edit_original_response(content=part)
        embed = discord.Embed(title="Sources", description=f"for {prompt}")
        embed.add_field(name="1. zorblat.md", value="distance 0.42 (lower is closer)")
        await interaction.followup.send(
            "Full prompt attached.",
            file=discord.File(io.BytesIO(b"PROMPT " + prompt.encode()), "prompt.txt"),
            embed=embed,
        )

    knowledge = app_commands.Group(name="knowledge", description="Manage knowledge", guild_ids=[guild.id])
    admin = app_commands.Group(name="admin", description="Admin tools", parent=knowledge)

    @knowledge.command(name="upload", description="Upload a file")
    async def upload(interaction: discord.Interaction, file: discord.Attachment, replace: bool = False) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        data = await file.read()
        outcomes.attachments.append(data)
        await interaction.followup.send(f"saved {file.filename} ({len(data)} bytes, replace={replace})", ephemeral=True)

    @admin.command(name="reset", description="Reset a domain")
    async def reset(interaction: discord.Interaction, domain: str) -> None:
        await interaction.response.send_message(f"reset {domain}", ephemeral=True)

    bot.tree.add_command(knowledge)

    async def domain_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        names = ["zoology", "geology", "zymurgy"]
        return [app_commands.Choice(name=n, value=n) for n in names if n.startswith(current)]

    @bot.tree.command(description="Pick a domain")
    @app_commands.autocomplete(name=domain_names)
    async def domain(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message(f"domain {name}")

    @bot.tree.command(description="Who is this?")
    async def who(interaction: discord.Interaction, user: discord.Member) -> None:
        await interaction.response.send_message(f"{user.name} has {len(user.roles)} roles, ping <@{user.id}>")

    class Buttons(discord.ui.View):
        @discord.ui.button(label="Answer without RAG", custom_id="norag")
        async def norag(self, interaction: discord.Interaction, button: discord.ui.Button[Buttons]) -> None:
            await interaction.response.edit_message(content=f"clicked by {interaction.user.name}", view=None)

    @bot.tree.command(description="Show buttons")
    async def buttons(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("choose", view=Buttons())

    class Picker(discord.ui.View):
        @discord.ui.select(custom_id="domains", max_values=2, options=[discord.SelectOption(label=n) for n in "abc"])
        async def domains(self, interaction: discord.Interaction, select: discord.ui.Select[Picker]) -> None:
            await interaction.response.defer()
            await interaction.followup.send(f"picked {', '.join(select.values)}", ephemeral=True)

    @bot.tree.command(description="Show a select menu")
    async def pick(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pick domains", view=Picker())

    @bot.tree.command(description="Too slow")
    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(3.2)  # the bot under test is slow on purpose
        try:
            await interaction.response.send_message("late")
        except discord.HTTPException as exc:
            outcomes.errors["slow"] = exc
        outcomes.event.set()

    @bot.tree.command(description="Answer twice")
    async def twice(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("first")
        interaction.response._response_type = None  # defeat discord.py's own guard to reach the server rule
        try:
            await interaction.response.send_message("second")
        except discord.HTTPException as exc:
            outcomes.errors["twice"] = exc
        outcomes.event.set()

    @bot.tree.command(description="Break a size limit")
    @app_commands.choices(kind=[app_commands.Choice(name=k, value=k) for k in ("content", "embed", "empty")])
    async def bad(interaction: discord.Interaction, kind: str) -> None:
        await interaction.response.defer()
        try:
            if kind == "content":
                await interaction.followup.send("x" * 2001)
            elif kind == "embed":
                await interaction.followup.send(embed=discord.Embed(title="t", description="d" * 4097))
            else:
                await interaction.edit_original_response(content="")
        except discord.HTTPException as exc:
            outcomes.errors[kind] = exc
        await interaction.edit_original_response(content=f"handled {kind}")

    @bot.tree.command(description="Ping everyone")
    async def loud(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("@everyone look", allowed_mentions=discord.AllowedMentions.all())

    @bot.tree.command(description="Files in the response, then replaced")
    async def files(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("v1", file=discord.File(io.BytesIO(b"one"), "one.txt"))
        message = await interaction.original_response()
        await interaction.edit_original_response(
            content="v2", attachments=[*message.attachments, discord.File(io.BytesIO(b"two"), "two.txt")]
        )
        await interaction.edit_original_response(content="v3", attachments=[discord.File(io.BytesIO(b"3"), "3.txt")])
        await interaction.edit_original_response(content="v4")

    @bot.tree.command(description="Followup before responding")
    async def early(interaction: discord.Interaction) -> None:
        try:
            await interaction.followup.send("too early")
        except discord.HTTPException as exc:
            outcomes.errors["early"] = exc
        await interaction.response.send_message("now properly")

    @bot.event
    async def setup_hook() -> None:
        await bot.tree.sync()
        await bot.tree.sync(guild=guild)

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if message.author.bot:
            return
        outcomes.seen_content.append(message.content)
        if bot.user is not None and bot.user.mentioned_in(message):
            text = message.content.replace(f"<@{bot.user.id}>", "").strip()
            async with message.channel.typing():
                sizes = [len(await a.read()) for a in message.attachments]
            reply = await message.reply(f"pong {text} {sizes} from {type(message.author).__name__}")
            await reply.edit(content=reply.content + " (edited)")

    return bot, outcomes


@pytest.fixture
async def bot_env(emulator: DiscordEmulator) -> AsyncIterator[tuple[DiscordEmulator, commands.Bot, Outcomes]]:
    bot, outcomes = make_bot(emulator)
    async with running_bot(emulator, bot):
        yield emulator, bot, outcomes


# ------------------------------------------------------------------------------------------------ plain HTTP checks


async def test_rest_basics_over_raw_http(emulator: DiscordEmulator) -> None:
    headers = {"Authorization": f"Bot {emulator.token}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(emulator.api_url + "/users/@me", headers=headers) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/json"
            assert (await response.json())["id"] == emulator.bot_id
        async with session.get(emulator.api_url + "/users/@me") as response:
            assert response.status == 401
        async with session.get(emulator.api_url + "/nowhere", headers=headers) as response:
            assert response.status == 404
        emulator.rate_limit("GET /users/@me", times=1, retry_after=0.25)
        async with session.get(emulator.api_url + "/users/@me", headers=headers) as response:
            assert response.status == 429
            assert response.headers["Via"]
            assert response.headers["Content-Type"] == "application/json"
            assert await response.json() == {
                "message": "You are being rate limited.",
                "retry_after": 0.25,
                "global": False,
            }
        async with session.get(emulator.api_url + "/users/@me", headers=headers) as response:
            assert response.status == 200
    assert emulator.violations == ["the emulator does not support GET /nowhere"]
    assert [r.status for r in emulator.requests] == [200, 401, 404, 429, 200]


async def test_patch_discord_restores_urls() -> None:
    before_base, before_gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    async with DiscordEmulator() as emu:
        assert emu.api_url == discord.http.Route.BASE
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == emu.gateway_url
    assert before_base == discord.http.Route.BASE
    assert before_gateway == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY


# ------------------------------------------------------------------------------------------------------- gateway


async def test_bot_connects_and_sees_the_guild(
    bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes],
) -> None:
    emu, bot, _ = bot_env
    assert bot.is_ready()
    assert bot.user is not None and str(bot.user.id) == emu.bot_id
    guild = bot.get_guild(int(emu.guild.id))
    assert guild is not None and guild.member_count == len(emu.guild.members) == 4
    assert {c.name for c in guild.text_channels} == {"general", "random"}
    assert guild.me.guild_permissions.send_messages
    assert emu.intents is not None and emu.intents & p.INTENT_MESSAGE_CONTENT
    assert emu.identify_count == 1
    names = {"stream", "domain", "who", "buttons", "pick", "slow", "twice", "bad", "loud", "early", "files"}
    assert {c["name"] for c in emu.global_commands.values()} == names
    assert [c["name"] for c in emu.guild_commands[emu.guild.id].values()] == ["knowledge"]
    assert emu.violations == []


async def test_mention_reply_with_attachment_typing_and_edit(
    bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes],
) -> None:
    emu, _, _ = bot_env
    sent = await emu.send_message(
        "random", "bob", "hello there", attachments=[("notes.txt", b"twelve bytes")], mention_bot=True
    )
    reply = await emu.wait_for_message("random", lambda m: m.content.endswith("(edited)"))
    assert reply.content == "pong hello there [12] from Member (edited)"
    assert reply.content_history == ["pong hello there [12] from Member", reply.content]
    assert reply.message_reference is not None and reply.message_reference["message_id"] == sent.id
    assert reply.allowed_mentions == {"parse": []}  # AllowedMentions.none(); replied_user defaults to false
    assert emu.files[sent.files[0].id].downloads == 1
    await emu.wait_for_typing("random")
    assert emu.violations == []


async def test_wrong_token_fails_login(emulator: DiscordEmulator) -> None:
    bot, _ = make_bot(emulator)
    with pytest.raises(discord.LoginFailure):
        await bot.start("not-the-token")
    await bot.close()
    assert emulator.identify_count == 0


async def test_members_intent_gets_every_member_without_chunk_requests(emulator: DiscordEmulator) -> None:
    intents = discord.Intents.default()
    intents.members = True
    bot = commands.Bot(command_prefix="!", intents=intents)
    async with running_bot(emulator, bot):
        guild = bot.get_guild(int(emulator.guild.id))
        assert guild is not None and guild.chunked and len(guild.members) == 4
        joined = asyncio.ensure_future(bot.wait_for("member_join", timeout=5))
        carol = emulator.add_member("carol")
        member = await joined
        assert member.name == "carol" and guild.get_member(int(carol["id"])) is not None
    assert "GUILD_MEMBERS_CHUNK" not in [event for event, _ in emulator.gateway.dispatched]


async def test_direct_messages(bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes]) -> None:
    emu, bot, _ = bot_env
    dm = emu.dm_channel("alice")
    await emu.send_message(dm, "alice", "psst", mention_bot=True)
    reply = await emu.wait_for_message(dm, lambda m: m.content.endswith("(edited)"))
    assert reply.content == "pong psst [] from User (edited)" and reply.guild_id is None
    interaction = await emu.invoke_command("domain", {"name": "geology"}, channel=dm)
    answer = await interaction.wait_response_done()
    assert (answer.channel_id, answer.content) == (dm["id"], "domain geology")
    bob = await bot.fetch_user(int(emu.get_user("bob")["id"]))
    await bob.send("hello bob")
    assert (await emu.wait_for_message(emu.dm_channel("bob"))).content == "hello bob"
    assert emu.violations == []


async def test_message_content_is_blanked_without_the_intent(emulator: DiscordEmulator) -> None:
    bot, outcomes = make_bot(emulator, message_content=False)
    async with running_bot(emulator, bot):
        await emulator.send_message(content="not for the bot")
        await emulator.send_message(content="for the bot", mention_bot=True)
        await emulator.wait_for_message(predicate=lambda m: m.content.endswith("for the bot [] from Member (edited)"))
    assert outcomes.seen_content == ["", f"<@{emulator.bot_id}> for the bot"]
    assert emulator.violations == []


async def test_resume_after_reconnect_replays_missed_events(
    bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes],
) -> None:
    emu, bot, _ = bot_env
    resumed = asyncio.Event()

    async def on_resumed() -> None:
        resumed.set()

    bot.add_listener(on_resumed)
    emu.request_reconnect()
    await emu.send_message(content="sent while reconnecting", mention_bot=True)
    await emu.wait_for_resume()
    reply = await emu.wait_for_message(predicate=lambda m: m.content.endswith("(edited)"))
    assert reply.content.startswith("pong sent while reconnecting")
    await asyncio.wait_for(resumed.wait(), timeout=5)
    assert emu.identify_count == 1 and emu.resume_count == 1
    interaction = await emu.invoke_command("domain", {"name": "zoology"})
    await interaction.wait_response_done(lambda m: m.content == "domain zoology")
    assert emu.violations == []


# -------------------------------------------------------------------------------------------------- interactions


async def test_deferred_stream_edits_then_followup_with_file_and_embed(
    bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes],
) -> None:
    emu, bot, _ = bot_env
    echo = bot.wait_for("message", check=lambda m: m.content == "Full prompt attached.", timeout=5)
    interaction = await emu.invoke_command("stream", {"prompt": "zorblat"})
    await interaction.wait_acknowledged()
    assert interaction.deferred and interaction.ack_latency is not None and interaction.ack_latency < 3
    followup = await interaction.wait_for_followup()
    original = await interaction.wait_response_done(lambda m: m.content == STREAM_PARTS[-1])
    assert original.content_history == ["", *STREAM_PARTS]
    assert original.edit_count == 3
    assert followup.content == "Full prompt attached."
    assert followup.file("*.txt").data == b"PROMPT zorblat"
    assert followup.embeds[0]["title"] == "Sources"
    assert "distance 0.42" in followup.embed_text()
    assert interaction.files == followup.files
    channel_messages = emu.channel_messages(emu.default_channel)
    assert [m.id for m in channel_messages] == [original.id, followup.id]
    echoed = [(event, data["id"]) for event, data in emu.gateway.dispatched if event.startswith("MESSAGE_")]
    assert echoed == [("MESSAGE_CREATE", original.id)] + [("MESSAGE_UPDATE", original.id)] * 3 + [
        ("MESSAGE_CREATE", followup.id)
    ]
    seen_by_bot = await echo  # the MESSAGE_CREATE echo of the followup reached discord.py
    assert seen_by_bot.id == int(followup.id) and seen_by_bot.attachments[0].filename == "prompt.txt"
    metrics = emu.metrics()
    assert metrics.interactions == 1 and metrics.acknowledged == 1 and metrics.completion_max is not None
    assert emu.violations == []


async def test_files_are_kept_added_and_replaced_by_edits(
    bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes],
) -> None:
    emu, _, _ = bot_env
    interaction = await emu.invoke_command("files")
    message = await interaction.wait_response_done(lambda m: m.content == "v4")
    assert [[f.filename for f in r.files] for r in message.revisions] == [
        ["one.txt"],
        ["one.txt", "two.txt"],
        ["3.txt"],
        ["3.txt"],
    ]
    assert message.file("3.*").data == b"3"
    assert message.content_history == ["v1", "v2", "v3", "v4"]
    assert emu.violations == []


async def test_subcommand_in_group_with_attachment_option(
    bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes],
) -> None:
    emu, _, outcomes = bot_env
    interaction = await emu.invoke_command("knowledge upload", {"file": FileUpload("facts.md", b"# Facts\n")})
    followup = await interaction.wait_for_followup()
    assert followup.content == "saved facts.md (8 bytes, replace=False)"
    assert followup.ephemeral
    assert outcomes.attachments == [b"# Facts\n"]
    reset = await emu.invoke_command("knowledge admin reset", {"domain": "zoology"})
    done = await reset.wait_response_done()
    assert done.content == "reset zoology" and done.ephemeral
    with pytest.raises(ValueError, match="no option"):
        await emu.invoke_command("knowledge upload", {"nope": 1})
    assert emu.violations == []


async def test_user_option_resolves_to_a_member(
    bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes],
) -> None:
    emu, _, _ = bot_env
    editors = emu.add_role("Knowledge Editor", p.PERM_MANAGE_GUILD)
    carol = emu.add_member("carol", roles=[editors])
    assert emu.permissions(carol) & p.PERM_MANAGE_GUILD
    interaction = await emu.invoke_command("who", {"user": "carol"})
    answer = await interaction.wait_response_done()
    assert answer.content == f"carol has 2 roles, ping <@{carol['id']}>"
    assert emu.violations == []  # the mention in the answer is covered by AllowedMentions.none()


async def test_autocomplete_returns_choices(bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes]) -> None:
    emu, _, _ = bot_env
    choices = await emu.autocomplete("domain", "name", "z")
    assert choices == [{"name": "zoology", "value": "zoology"}, {"name": "zymurgy", "value": "zymurgy"}]
    assert emu.interactions[-1].ack_latency is not None
    assert emu.violations == []


async def test_button_click_updates_the_message(bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes]) -> None:
    emu, _, _ = bot_env
    command = await emu.invoke_command("buttons")
    message = await command.wait_response_done()
    assert [b["label"] for b in message.buttons] == ["Answer without RAG"]
    click = await emu.click_button(message, "norag", user="bob")
    await click.wait_acknowledged()
    edited = await emu.wait_for_edit(message, lambda m: m.content.startswith("clicked"))
    assert edited.content == "clicked by bob"
    assert edited.components == []
    assert click.original is message
    with pytest.raises(ValueError, match="no component"):
        await emu.click_button(message, "norag")
    assert emu.violations == []


async def test_select_menu(bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes]) -> None:
    emu, _, _ = bot_env
    message = await (await emu.invoke_command("pick")).wait_response_done()
    choice = await emu.choose(message, "domains", ["a", "c"], "bob")
    followup = await choice.wait_for_followup()
    assert followup.content == "picked a, c" and followup.ephemeral
    assert choice.response_type == p.CALLBACK_DEFERRED_UPDATE_MESSAGE and choice.original is message
    with pytest.raises(ValueError, match="not options"):
        await emu.choose(message, "domains", ["z"])
    with pytest.raises(ValueError, match=r"takes 1\.\.2 values"):
        await emu.choose(message, "domains", ["a", "b", "c"])
    assert emu.violations == []


# --------------------------------------------------------------------------------------------------------- rules


async def test_three_second_deadline(bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes]) -> None:
    emu, _, outcomes = bot_env
    interaction = await emu.invoke_command("slow")
    assert await interaction.wait_rejected(timeout=6) == (404, 10062)
    await asyncio.wait_for(outcomes.event.wait(), timeout=5)
    error = outcomes.errors["slow"]
    assert isinstance(error, discord.NotFound) and error.code == 10062
    assert interaction.expired and not interaction.acknowledged
    assert len(emu.violations) == 2
    assert "was not acknowledged within 3s" in emu.violations[0]
    assert "404 Unknown interaction (10062)" in emu.violations[1]
    with pytest.raises(AssertionError, match="missed the acknowledgement deadline"):
        await interaction.wait_acknowledged()


async def test_answering_twice_is_refused(bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes]) -> None:
    emu, _, outcomes = bot_env
    interaction = await emu.invoke_command("twice")
    await interaction.wait_rejected()
    await asyncio.wait_for(outcomes.event.wait(), timeout=5)
    assert outcomes.errors["twice"].status == 400 and outcomes.errors["twice"].code == 40060
    assert interaction.original is not None and interaction.original.content == "first"
    assert emu.violations == [
        "interaction 'twice' was answered twice: 400 Interaction has already been acknowledged (40060)"
    ]


@pytest.mark.parametrize(
    ("kind", "field", "code"),
    [("content", "content", 50035), ("embed", "embeds.0.description", 50035), ("empty", None, 50006)],
)
async def test_size_limits_and_empty_messages(
    bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes], kind: str, field: str | None, code: int
) -> None:
    emu, _, outcomes = bot_env
    interaction = await emu.invoke_command("bad", {"kind": kind})
    await interaction.wait_response_done(lambda m: m.content == f"handled {kind}")
    error = outcomes.errors[kind]
    assert error.status == 400 and error.code == code
    assert len(emu.violations) == 1
    if field is not None:
        assert f"{field}: Must be" in emu.violations[0]
        assert interaction.followups == []
    with pytest.raises(ValueError, match="not a choice"):
        await emu.invoke_command("bad", {"kind": "other"})


async def test_pinging_mentions_are_violations(bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes]) -> None:
    emu, _, _ = bot_env
    interaction = await emu.invoke_command("loud")
    await interaction.wait_response_done()
    violation = await emu.wait_for_violation("ping")
    assert "lets Discord ping @everyone" in violation


async def test_rate_limited_edits_are_retried_without_loss(
    bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes],
) -> None:
    emu, _, _ = bot_env
    rule = emu.rate_limit("PATCH /webhooks/*/*/messages/*", times=2, retry_after=0.05)
    interaction = await emu.invoke_command("stream", {"prompt": "basalt"})
    original = await interaction.wait_response_done(lambda m: m.content == STREAM_PARTS[-1])
    await interaction.wait_for_followup()
    assert rule.hits == 2
    assert original.content_history == ["", *STREAM_PARTS]
    assert [r.status for r in emu.requests if r.method == "PATCH"] == [429, 429, 200, 200, 200]
    assert emu.metrics().rate_limited == 2
    assert emu.violations == []


async def test_injected_failure_reaches_the_bot(bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes]) -> None:
    emu, bot, _ = bot_env
    emu.fail_requests("POST /channels/*/messages")
    channel = bot.get_channel(int(emu.default_channel["id"]))
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.Forbidden):
        await channel.send("hi")
    sent = await channel.send("hi again")
    assert emu.messages[str(sent.id)].content == "hi again"
    fetched = await channel.fetch_message(sent.id)
    assert fetched.content == "hi again"
    assert [m.id async for m in channel.history(limit=5)] == [sent.id]


async def test_followup_before_the_first_response(bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes]) -> None:
    emu, _, outcomes = bot_env
    interaction = await emu.invoke_command("early")
    await interaction.wait_response_done(lambda m: m.content == "now properly")
    assert isinstance(outcomes.errors["early"], discord.NotFound) and outcomes.errors["early"].code == 10015
    assert interaction.rejected == [(404, 10015)]
    assert len(emu.violations) == 1 and "used before its first response" in emu.violations[0]


# ------------------------------------------------------------------------------------------------ wait helpers


async def test_wait_helpers_time_out_with_context(emulator: DiscordEmulator) -> None:
    with pytest.raises(EmulatorTimeout, match="waiting for a message in any channel"):
        await emulator.wait_for_message(timeout=0.05)


async def test_wait_helpers_fail_fast_when_the_client_crashes(emulator: DiscordEmulator) -> None:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default())

    async def crash() -> None:
        raise RuntimeError("boom in setup_hook")

    bot.setup_hook = crash  # type: ignore[method-assign]
    task = asyncio.create_task(bot.start(emulator.token))
    emulator.watch_client(task)
    with pytest.raises(ClientCrashed, match="boom"):
        await emulator.wait_until_ready(timeout=5)
    await bot.close()
    with pytest.raises(RuntimeError):
        await task


async def test_wait_for_message_after(bot_env: tuple[DiscordEmulator, commands.Bot, Outcomes]) -> None:
    emu, _, _ = bot_env
    await emu.send_message(content="one", mention_bot=True)
    first = await emu.wait_for_message(predicate=lambda m: "one" in m.content)
    await emu.wait_for_edit(first)
    await emu.send_message(content="two", mention_bot=True)
    second: MessageRecord = await emu.wait_for_message(after=first)
    assert "two" in second.content
    await emu.wait_for_edit(second)
    assert emu.bot_messages() == [first, second]
