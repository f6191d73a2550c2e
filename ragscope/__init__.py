"""The `ragscope` console script: the terminal surface of the engine, and the one package that may import both the
engine (`rag_engine`) and the Discord bot (`bot`, for `ragscope run`)."""
