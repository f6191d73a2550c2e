"""Every payload factory produces what discord.py's own parsers accept, and the rule checks are exact.

The payloads are fed to discord.py's model constructors through a real (not connected) client's
`ConnectionState`, the same code path the gateway parsers use.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import discord
import pytest
from discord import app_commands

from . import payloads as p
from . import rules
from .records import route_matches


class World:
    """A guild built only from the factories, loaded into a discord.py ConnectionState."""

    def __init__(self) -> None:
        self.client = discord.Client(intents=discord.Intents.all())
        self.state = self.client._connection
        self.bot = p.user("bot", bot=True)
        self.state.user = discord.ClientUser(state=self.state, data=self.bot)  # type: ignore[arg-type]
        self.owner = p.user("owner")
        self.alice = p.user("alice", global_name="Alice A.")
        self.guild_id = p.next_id()
        self.editors = p.role(self.guild_id, "Knowledge Editor", permissions=p.PERM_MANAGE_GUILD, position=1)
        self.channel = p.text_channel(self.guild_id, "general", topic="talk")
        self.alice_member = p.member(self.alice, roles=[self.editors["id"]], nick="ally")
        self.guild_payload = p.guild(
            id=self.guild_id,
            name="Factory Guild",
            owner_id=self.owner["id"],
            roles=[p.everyone_role(self.guild_id), self.editors],
            channels=[self.channel],
            members=[p.member(self.owner), p.member(self.bot), self.alice_member],
        )
        self.guild = discord.Guild(data=self.guild_payload, state=self.state)  # type: ignore[arg-type]
        self.state._add_guild(self.guild)

    def text_channel(self) -> discord.TextChannel:
        channel = self.guild.get_channel(int(self.channel["id"]))
        assert isinstance(channel, discord.TextChannel)
        return channel

    def envelope(self) -> dict[str, object]:
        return {
            "application_id": self.bot["id"],
            "channel": self.channel,
            "user": self.alice,
            "guild_id": self.guild_id,
            "member": self.alice_member,
            "member_permissions": p.PERM_MANAGE_GUILD,
        }


@pytest.fixture
def world() -> Iterator[World]:
    yield World()


def test_snowflakes_are_time_based_increasing_strings() -> None:
    ids = [p.next_id() for _ in range(1000)]
    assert all(isinstance(i, str) for i in ids)
    assert [int(i) for i in ids] == sorted({int(i) for i in ids})
    created = discord.utils.snowflake_time(int(ids[-1])).timestamp()
    assert abs(created - time.time()) < 5
    assert p.snowflake_time(ids[-1]) == discord.utils.snowflake_time(int(ids[-1]))


def test_user_role_member_channel_guild(world: World) -> None:
    guild = world.guild
    assert guild.name == "Factory Guild" and guild.member_count == 3 and guild.chunked
    assert guild.default_role.id == int(world.guild_id)
    member = guild.get_member(int(world.alice["id"]))
    assert member is not None
    assert (member.name, member.global_name, member.nick) == ("alice", "Alice A.", "ally")
    assert member.guild_permissions.manage_guild and member.guild_permissions.send_messages
    assert not member.guild_permissions.administrator
    assert [r.name for r in member.roles] == ["@everyone", "Knowledge Editor"]
    owner = guild.get_member(int(world.owner["id"]))
    assert owner is not None and owner.guild_permissions.administrator
    channel = world.text_channel()
    assert (channel.name, channel.topic, channel.position) == ("general", "talk", 0)
    assert channel.permissions_for(member).attach_files
    assert guild.me is not None and guild.me.bot


def test_ready_and_application(world: World) -> None:
    ready = p.ready(
        bot_user=world.bot,
        session_id="s",
        resume_gateway_url="ws://127.0.0.1:1/",
        guild_ids=[world.guild_id],
        application_id=world.bot["id"],
    )
    assert ready["guilds"] == [{"id": world.guild_id, "unavailable": True}]
    assert discord.ClientUser(state=world.state, data=ready["user"]).bot
    info = discord.AppInfo(world.state, p.application(world.bot["id"], "bot", world.owner))  # type: ignore[arg-type]
    assert info.id == int(world.bot["id"]) and info.owner.name == "owner"


def test_message_with_member_mentions_and_attachment(world: World) -> None:
    upload = p.attachment("a.txt", 3, "http://127.0.0.1:1/attachments/a.txt", content_type="text/plain")
    data = p.message(
        channel_id=world.channel["id"],
        guild_id=world.guild_id,
        author=world.alice,
        member=p.partial_member(world.alice_member),
        content=f"<@{world.bot['id']}> hi",
        mentions=[world.bot],
        attachments=[upload],
        embeds=[{"type": "rich", "title": "t"}],
    )
    message = discord.Message(state=world.state, channel=world.text_channel(), data=data)  # type: ignore[arg-type]
    assert isinstance(message.author, discord.Member) and message.author.nick == "ally"
    assert world.state.user is not None and world.state.user.mentioned_in(message)
    assert message.attachments[0].filename == "a.txt" and message.attachments[0].content_type == "text/plain"
    assert message.embeds[0].title == "t"
    assert message.components == [] and message.reference is None
    assert abs(message.created_at.timestamp() - time.time()) < 5


def test_reply_message_with_interaction_metadata(world: World) -> None:
    original = p.message(channel_id=world.channel["id"], guild_id=world.guild_id, author=world.alice, content="q")
    reply = p.message(
        channel_id=world.channel["id"],
        guild_id=world.guild_id,
        author=world.bot,
        content="a",
        type=p.MESSAGE_REPLY,
        message_reference=p.message_reference(original["id"], world.channel["id"], world.guild_id),
        referenced_message=original,
        webhook_id=world.bot["id"],
        interaction_metadata=p.interaction_metadata(
            p.next_id(), p.INTERACTION_APPLICATION_COMMAND, world.alice, guild_id=world.guild_id, name="ask"
        ),
    )
    message = discord.Message(state=world.state, channel=world.text_channel(), data=reply)  # type: ignore[arg-type]
    assert message.type is discord.MessageType.reply
    assert message.reference is not None and isinstance(message.reference.resolved, discord.Message)
    assert message.reference.resolved.content == "q"
    assert message.interaction_metadata is not None and message.interaction_metadata.user.name == "alice"


def test_slash_command_with_group_subcommand_and_resolved_options(world: World) -> None:
    resolved = p.Resolved()
    upload = p.attachment("facts.md", 8, "http://127.0.0.1:1/attachments/facts.md")
    leaf = [
        p.command_option("file", upload, resolved, type=p.OPTION_ATTACHMENT),
        p.command_option("who", world.alice, resolved, members={world.alice["id"]: world.alice_member}),
        p.command_option("where", world.channel, resolved),
        p.command_option("role", world.editors, resolved, type=p.OPTION_ROLE),
        p.command_option("count", 3, resolved),
        p.command_option("ratio", 0.5, resolved),
        p.command_option("replace", True, resolved),
        p.command_option("text", "hello", resolved),
    ]
    options = p.nest_options(leaf, subcommand="upload", group="admin")
    data = p.slash_command_interaction(
        "knowledge",
        options=options,
        resolved=resolved,
        command_guild_id=world.guild_id,
        **world.envelope(),  # type: ignore[arg-type]
    )
    interaction = discord.Interaction(data=data, state=world.state)  # type: ignore[arg-type]
    assert interaction.type is discord.InteractionType.application_command
    assert isinstance(interaction.user, discord.Member) and interaction.permissions.manage_guild
    assert isinstance(interaction.channel, discord.TextChannel)
    assert interaction.guild_id == int(world.guild_id) and interaction.filesize_limit == p.DEFAULT_ATTACHMENT_SIZE_LIMIT
    assert data["data"]["guild_id"] == world.guild_id
    assert [o["type"] for o in data["data"]["options"]] == [p.OPTION_SUB_COMMAND_GROUP]
    assert [o["type"] for o in leaf] == [11, 6, 7, 8, 4, 10, 5, 3]
    namespace = app_commands.Namespace(interaction, data["data"]["resolved"], leaf)  # type: ignore[arg-type]
    assert isinstance(namespace.file, discord.Attachment) and namespace.file.filename == "facts.md"
    assert isinstance(namespace.who, discord.Member) and namespace.who.nick == "ally"
    assert isinstance(namespace.role, discord.Role) and namespace.role.name == "Knowledge Editor"
    assert namespace.where.id == int(world.channel["id"])
    assert (namespace.count, namespace.ratio, namespace.replace, namespace.text) == (3, 0.5, True, "hello")


def test_dm_interaction_carries_user() -> None:
    alice = p.user("alice")
    client = discord.Client(intents=discord.Intents.default())
    state = client._connection
    data = p.slash_command_interaction("help", application_id=p.next_id(), channel=p.dm_channel(alice), user=alice)
    interaction = discord.Interaction(data=data, state=state)  # type: ignore[arg-type]
    assert interaction.guild is None and isinstance(interaction.user, discord.User)
    assert isinstance(interaction.channel, discord.DMChannel)


def test_autocomplete_interaction(world: World) -> None:
    resolved = p.Resolved()
    options = [p.command_option("name", "zo", resolved, focused=True)]
    data = p.autocomplete_interaction("domain", options=options, **world.envelope())  # type: ignore[arg-type]
    interaction = discord.Interaction(data=data, state=world.state)  # type: ignore[arg-type]
    assert interaction.type is discord.InteractionType.autocomplete
    assert data["data"]["options"] == [{"name": "name", "type": 3, "value": "zo", "focused": True}]
    with pytest.raises(ValueError, match="exactly one focused"):
        p.autocomplete_interaction("domain", options=[], **world.envelope())  # type: ignore[arg-type]


def test_component_interaction_carries_the_full_message(world: World) -> None:
    button = {"type": p.COMPONENT_BUTTON, "style": 1, "label": "Go", "custom_id": "go", "id": 2}
    message = p.message(
        channel_id=world.channel["id"],
        guild_id=world.guild_id,
        author=world.bot,
        content="pick",
        components=[{"type": p.COMPONENT_ACTION_ROW, "id": 1, "components": [button]}],
    )
    data = p.component_interaction(message=message, custom_id="go", **world.envelope())  # type: ignore[arg-type]
    interaction = discord.Interaction(data=data, state=world.state)  # type: ignore[arg-type]
    assert interaction.type is discord.InteractionType.component
    assert interaction.message is not None and interaction.message.id == int(message["id"])
    row = interaction.message.components[0]
    assert isinstance(row, discord.ActionRow)
    child = row.children[0]
    assert isinstance(child, discord.Button) and child.custom_id == "go"
    assert interaction.data == {"custom_id": "go", "component_type": 2}


def test_registered_command_echo_parses() -> None:
    client = discord.Client(intents=discord.Intents.default())
    command = {"id": p.next_id(), "application_id": p.next_id(), "name": "ask", "description": "Ask", "type": 1}
    command["options"] = [{"type": 3, "name": "question", "description": "q", "required": True}]
    parsed = app_commands.AppCommand(data=command, state=client._connection)  # type: ignore[arg-type]
    assert parsed.name == "ask" and parsed.options[0].name == "question"


# ------------------------------------------------------------------------------------------------------ rules


def _paths(body: dict[str, object]) -> list[str]:
    errors, _ = rules.validate_message(body, file_count=0)
    return [".".join(e.path) for e in errors]


@pytest.mark.parametrize(
    ("embed", "path"),
    [
        ({"title": "t" * 257}, "embeds.0.title"),
        ({"description": "d" * 4097}, "embeds.0.description"),
        ({"fields": [{"name": "n", "value": "v"}] * 26}, "embeds.0.fields"),
        ({"fields": [{"name": "n" * 257, "value": "v"}]}, "embeds.0.fields.0.name"),
        ({"fields": [{"name": "n", "value": "v" * 1025}]}, "embeds.0.fields.0.value"),
        ({"fields": [{"name": "n", "value": ""}]}, "embeds.0.fields.0.value"),
        ({"footer": {"text": "f" * 2049}}, "embeds.0.footer.text"),
        ({"author": {"name": "a" * 257}}, "embeds.0.author.name"),
    ],
)
def test_embed_limits(embed: dict[str, object], path: str) -> None:
    assert path in _paths({"embeds": [embed]})


def test_limits_at_the_boundary_pass() -> None:
    embed = {
        "title": "t" * 256,
        "description": "d" * 4096,
        "fields": [{"name": "n" * 10, "value": "v" * 10}] * 25,
        "footer": {"text": "f" * 100},
        "author": {"name": "a" * 256},
    }
    assert rules.embed_length(embed) == 256 + 4096 + 25 * 20 + 100 + 256
    assert _paths({"content": "c" * 2000, "embeds": [embed]}) == []


def test_total_size_count_and_content_limits() -> None:
    half = {"description": "d" * 3001}
    assert _paths({"embeds": [half, half]}) == ["embeds"]
    assert _paths({"embeds": [{"title": "t"}] * 11}) == ["embeds"]
    assert _paths({"content": "c" * 2001}) == ["content"]
    assert rules.validate_message({"content": "  "}, file_count=0) == ([], True)
    assert rules.validate_message({"content": ""}, file_count=1) == ([], False)


def test_component_limits() -> None:
    button = {"type": 2, "style": 1, "label": "x", "custom_id": "a"}
    six = [{"type": 1, "components": [button | {"custom_id": str(i)}]} for i in range(6)]
    assert _paths({"components": six}) == ["components"]
    crowded = [{"type": 1, "components": [button | {"custom_id": str(i)} for i in range(6)]}]
    assert _paths({"components": crowded}) == ["components.0.components"]
    assert _paths({"components": [{"type": 1, "components": [button | {"label": "l" * 81}]}]}) == [
        "components.0.components.0.label"
    ]
    assert _paths({"components": [{"type": 1, "components": [button, button]}]}) == ["components"]


def test_invalid_form_body_nests_errors() -> None:
    errors, _ = rules.validate_message({"content": "c" * 2001}, file_count=0, prefix=("data",))
    assert rules.invalid_form_body(errors) == {
        "code": 50035,
        "message": "Invalid Form Body",
        "errors": {
            "data": {
                "content": {
                    "_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]
                }
            }
        },
    }


def test_mention_rules() -> None:
    none: dict[str, list[str]] = {"parse": []}
    assert rules.mention_violation("<@1> hi", none, is_reply=True) is None
    assert rules.mention_violation("<@1> <@&2> @everyone", {"parse": [], "users": ["1"]}, is_reply=False) is None
    assert rules.mention_violation("no pings", None, is_reply=False) is None
    missing = rules.mention_violation("<@!1> hi", None, is_reply=False)
    assert missing is not None and "users ['1']" in missing
    assert "replied-to author" in (rules.mention_violation("hi", None, is_reply=True) or "")
    assert "roles ['2']" in (rules.mention_violation("<@&2>", {"parse": ["roles"]}, is_reply=False) or "")
    assert "@here" in (rules.mention_violation("@here", {"parse": ["everyone"]}, is_reply=False) or "")
    assert rules.mention_violation("@here", {"parse": ["users"]}, is_reply=False) is None
    errors, _ = rules.validate_message(
        {"content": "x", "allowed_mentions": {"parse": ["users"], "users": ["1"]}}, file_count=0
    )
    assert [e.code for e in errors] == ["MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE"]


def test_choice_limits() -> None:
    assert rules.validate_choices([{"name": "a", "value": "a"}] * 25) == []
    assert [".".join(e.path) for e in rules.validate_choices([{"name": "a", "value": "a"}] * 26)] == ["data.choices"]
    assert [".".join(e.path) for e in rules.validate_choices([{"name": "", "value": "v" * 101}])] == [
        "data.choices.0.name",
        "data.choices.0.value",
    ]


def test_route_patterns() -> None:
    assert route_matches("PATCH /webhooks/*/*/messages/*", "PATCH", "/webhooks/1/tok/messages/@original")
    assert not route_matches("PATCH /webhooks/*/*/messages/*", "POST", "/webhooks/1/tok/messages/@original")
    assert not route_matches("PATCH /webhooks/*/*/messages/*", "PATCH", "/webhooks/1/tok")
    assert route_matches("/channels/*/messages", "POST", "/channels/5/messages")
    assert route_matches("* /channels/*/messages", "GET", "/channels/5/messages")
