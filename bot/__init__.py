"""ragscope's Discord adapter (discord.py): the engine's answers as slash commands, mentions and buttons.

`app` starts it (`python -m bot`, `ragscope run`); `client.RagBot` is the discord.py client with the engine
and the bot's settings (`config`) handed in; `cogs/` holds one cog per command group. Shared by them:
`admission` (the one check before anything costs), `answering` (the one flow from a checked question to the
final message, through the generation queue `jobs` and `streaming` edits), `views` (the buttons), `domains`
(the domain option), `errors` (the one error boundary and the bot's `RagError`s), `render/` (all formatting;
the pipeline view too), `store` (channel domains and in-flight answers in SQLite),
`uploads`, `permissions`, `cooldown`, `knowledge_events` (the watcher's updates on the event loop).

Past one process (`ragscope run --role gateway|worker`): answers go through one seam, `job_queue.JobQueue`
(this process's generation queue, or `redis_queue`, the gateway's side of a Redis Streams queue); `worker`
is the answer worker that takes them; `wire` carries the records as JSON; `queueing` is what the queues
share (position reports, the running median of job durations).

Engine work runs off the event loop. Nothing in `rag_engine` imports from here.
"""
