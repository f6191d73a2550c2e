"""The bot's command groups, one cog each, loaded by name (`bot.client.COGS`); no cog imports another.

- `ask`        `/ask`, `/norag`, `/compare`, and mentions of the bot
- `domain`     `/domain`: which domain a channel searches
- `knowledge`  `/knowledge status | upload | reindex`
- `pipeline`   `/pipeline`: the five RAG steps of one answer
- `lab`        `/lab k | mmr | retriever | hops | knnlm`: the RAG lab's experiments on one question
- `eval`       `/eval`: retrieval or answer quality on a domain's questions
- `help`       `/help`

A cog only declares its commands and calls shared code: the admission check (`bot.admission`), the answer
flow (`bot.answering`), the domain option (`bot.domains`), the buttons (`bot.views`), rendering
(`bot.render`). Errors reach the bot's one boundary (`bot.errors`) without any handler here.
"""
