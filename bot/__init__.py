"""ragscope's Discord adapter (discord.py): cogs per command group, engine calls off the event loop.

Only the package exists so far; the bot itself is built by the Discord bot issue. Nothing in `rag_engine`
imports from here.
"""
