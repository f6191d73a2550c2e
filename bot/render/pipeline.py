"""A `PipelineView` as one Discord message: five embeds (one per step), the two pictures and the prompt file.

Budgeted to Discord's limits: 5 embeds whose texts stay under 6000 characters together, descriptions under
4096, fields under 1024; the map and the attention heatmap are attachments shown inside steps 2 and 5; the
full prompt always goes as prompt.txt. Building the view is the engine's job (`Engine.explain`), drawing its
pictures `rag_engine.explain.figures`'s; this module only lays them out. Drawing takes a while: call
`pipeline_message` off the event loop (the cog and the button run it in the generation queue).
"""

from __future__ import annotations

import io

import discord

from bot.render.text import truncate
from rag_engine.explain.figures import attention_png, embedding_map_png
from rag_engine.explain.view import PipelineView
from rag_engine.safe_names import display_name

# Leaves room under Discord's 6000-character total for titles and footers.
TABLE_ROWS = 12
PROMPT_PREVIEW_CHARS = 500
ANSWER_CHARS = 900
EXAMPLE_CHARS = 120
COLOUR = discord.Colour.blurple()


def pipeline_message(view: PipelineView) -> tuple[str, list[discord.Embed], list[discord.File]]:
    """(content, embeds, files) for one message showing the five steps of `view`, its pictures drawn."""
    map_png = embedding_map_png(view) if view.query is not None and view.retrieval is not None else None
    attention = view.generation.attention
    heat_png = attention_png(attention) if attention is not None else None
    embeds: list[discord.Embed] = []
    files: list[discord.File] = []
    content = f"**Pipeline for:** {truncate(view.question, 300)}"
    if not view.used_rag:
        content += "\nNo RAG: the model answered from its weights alone, so steps 1–3 (retrieval) did not happen."

    if view.documents is not None:
        docs = view.documents
        step1 = discord.Embed(
            title="1 · Embed the documents",
            description=(
                f"{docs.passages} passages from {docs.files} files in **{', '.join(docs.domains)}**, each embedded "
                f"by `{docs.embedding_model}` into a {docs.dimension}-dimensional vector."
            ),
            colour=COLOUR,
        )
        for example in docs.examples:
            step1.add_field(
                name=truncate(f"{example.domain}/{display_name(example.path)} {example.span}", 250),
                value=truncate(example.text, EXAMPLE_CHARS) or "…",
                inline=False,
            )
        embeds.append(step1)

    if view.query is not None:
        query = view.query
        step2 = discord.Embed(
            title="2 · Embed the query",
            description=(
                f"The question becomes one {query.dimension}-D vector ({query.embed_seconds * 1000:.0f} ms). "
                "The map shows every passage (blue) and the question (orange) in 2-D: positions are a PCA "
                "projection, the distances on the lines are the real high-dimensional Euclidean ones."
            ),
            colour=COLOUR,
        )
        if map_png is not None:
            files.append(discord.File(io.BytesIO(map_png), filename="embedding_map.png"))
            step2.set_image(url="attachment://embedding_map.png")
        embeds.append(step2)

    if view.retrieval is not None:
        retrieval = view.retrieval
        lines = ["rank  dist   used  passage"]
        for row in retrieval.rows[:TABLE_ROWS]:
            mark = "yes" if row.retrieved else ("far" if row.distance > retrieval.max_distance else " - ")
            lines.append(f"{row.rank:>4}  {row.distance:.3f}  {mark:<4}  {truncate(row.path, 40)} {row.span}")
        more = len(retrieval.rows) - TABLE_ROWS
        table = "\n".join(lines)
        # The title and first sentence say what ranked the passages (the answer's mode); the table is by distance.
        step3 = discord.Embed(
            title=f"3 · {retrieval.title}",
            description=(
                f"{retrieval.ranking} The table is by Euclidean distance (**lower is closer**); nothing farther "
                f"than {retrieval.max_distance:.2f} is used.\n"
                f"```\n{table}\n```" + (f"…and {more} more rows in the full table." if more > 0 else "")
            ),
            colour=COLOUR,
        )
        if retrieval.note:
            step3.set_footer(text=truncate(retrieval.note, 500))
        embeds.append(step3)

    if view.prompt is not None:
        prompt = view.prompt
        step4 = discord.Embed(
            title="4 · Build the prompt",
            description=(
                f"{prompt.tokens} tokens of a {prompt.context_window}-token context window "
                f"({prompt.fullness:.0f}% full). The exact text is attached as prompt.txt.\n"
                f"```\n{truncate(prompt.text, PROMPT_PREVIEW_CHARS).replace('```', 'ˋˋˋ')}\n```"
            ),
            colour=COLOUR,
        )
        files.append(discord.File(io.BytesIO(prompt.text.encode("utf-8")), filename="prompt.txt"))
        embeds.append(step4)

    generation = view.generation
    ansi = truncate(generation.ansi or generation.text, ANSWER_CHARS).replace("```", "ˋˋˋ")
    in_context = sum(t.in_context for t in generation.tokens)
    step5 = discord.Embed(
        title="5 · Generate",
        description=(
            f"{len(generation.tokens)} tokens; {in_context} (green) also occur in the retrieved context.\n"
            f"```ansi\n{ansi}\n```"
        ),
        colour=COLOUR,
    )
    if heat_png is not None:
        files.append(discord.File(io.BytesIO(heat_png), filename="attention.png"))
        step5.set_image(url="attachment://attention.png")
        step5.set_footer(text="Where the model looked: its self-attention from each generated token over the prompt.")
    elif generation.attention_note:
        step5.set_footer(text=truncate(generation.attention_note, 500))
    embeds.append(step5)
    return content, embeds, files
