"""How the bot shows engine results in Discord: message text, embeds and files, within Discord's limits.

Pure formatting: functions take records (`Answer`, `DomainStats`, evaluation reports) and return strings,
`discord.Embed` or `discord.File`; nothing here sends, edits or calls the engine. Limits that Discord
enforces (and rejects a request for) are respected, so a long answer or fifty sources can never make a reply
fail. The wording follows the terminal renderer (`ragscope.render`): Euclidean distance, lower is closer,
and which passages went into the prompt.

- `text`     Discord's limits, cutting and splitting text, defusing mass mentions, markdown escaping
- `answer`   an answer's message: its label line, the text, the support check, the not-covered wording
- `sources`  the retrieved passages as embed pages
- `status`   `/knowledge status`: what is indexed per domain
- `eval`     `/eval`: the retrieval and answer evaluation reports
- `pipeline` a `PipelineView` as five embeds, its two pictures and the prompt file
- `lab`      a RAG lab report: its lines, its explanation, its picture and JSON

Not here: buttons and their callbacks (`bot.views`),
choosing what to show when (`bot.answering`, the cogs).
"""
