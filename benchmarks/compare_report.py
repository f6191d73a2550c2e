"""The terminal report of `compare_llamaindex`: one line per measurement, both systems side by side.

Only formatting: every number comes from the result that `compare_llamaindex.py` also writes as JSON.
"""

from __future__ import annotations

from typing import Any


def _row(name: str, ours: str, theirs: str, ratio: str = "") -> None:
    print(f"  {name:<44} {ours:>16} {theirs:>22}   {ratio}")


def _times(a: float, b: float) -> str:
    return f"{b / a:.2f}×" if a > 0 else "–"


def print_report(result: dict[str, Any]) -> None:
    host, build, tokens = result["machine"], result["build"], result["tokens"]
    ours_build, theirs_build, ratios = build["ragscope"], build["llamaindex"], build["ratios"]
    print(
        f"ragscope vs LlamaIndex: {result['docs']} SciFact abstracts, {result['queries']} train queries; "
        f"{host['cpu_model']}, {host['cores']} cores; llama-index-core {host['versions']['llama-index-core']}"
    )
    chunking = ours_build["chunking"]
    print(
        f"  chunking: ragscope {chunking['chunk_size_chars']}-char passages ({chunking['chunk_overlap_chars']} "
        f"overlap) → {ours_build['passages']} texts, {tokens['ragscope']['embedded_tokens']} tokens embedded; "
        f"LlamaIndex {theirs_build['node_parser']} {theirs_build['chunk_size_tokens']} tokens "
        f"({theirs_build['chunk_overlap_tokens']} overlap) + file_path metadata → {theirs_build['nodes']} texts, "
        f"{tokens['llamaindex']['embedded_tokens']} tokens embedded ({tokens['llamaindex']['truncated_texts']} "
        f"cut at {tokens['llamaindex']['max_seq_tokens']})"
    )
    _row("", "ragscope", "LlamaIndex", "LlamaIndex ÷ ragscope")
    _row(
        "full build (model loaded)",
        f"{ours_build['build_seconds']:.1f} s",
        f"{theirs_build['build_seconds']:.1f} s",
        f"{ratios['per_document']:.2f}× per document, {ratios['per_embedded_token']:.2f}× per embedded token",
    )
    _row(
        "full build process (imports, model, build)",
        f"{ours_build['process_seconds']:.1f} s",
        f"{theirs_build['process_seconds']:.1f} s",
        _times(ours_build["process_seconds"], theirs_build["process_seconds"]),
    )
    _row("  FaissMapVectorStore build", "", f"{build['llamaindex_map']['build_seconds']:.1f} s")

    edit = result["edit"]
    _row(
        "one-file edit: load + update + save",
        f"{edit['ragscope_update_seconds_median']:.2f} s",
        f"{edit['llamaindex_faissmap_load_update_save_seconds_median']:.2f} s (map)",
        _times(edit["ragscope_update_seconds_median"], edit["llamaindex_faissmap_load_update_save_seconds_median"]),
    )
    _row(
        "one-file edit: whole fresh process",
        f"{edit['ragscope_process_seconds_median']:.2f} s",
        f"{edit['llamaindex_faissmap_process_seconds_median']:.2f} s (map)",
        _times(edit["ragscope_process_seconds_median"], edit["llamaindex_faissmap_process_seconds_median"]),
    )
    _row(
        "  correct edit with the default store",
        "",
        f"{theirs_build['process_seconds']:.1f} s (rebuild)",
        _times(edit["ragscope_process_seconds_median"], theirs_build["process_seconds"]),
    )
    print(f"    FaissVectorStore delete: {edit['llamaindex_faiss_error']}")
    if not edit["llamaindex_faissmap_correct"]:
        integrity = edit["edits"][-1]["llamaindex_faissmap"]["integrity"]
        print(
            f"    FaissMapVectorStore after the edits: {integrity['unique_faiss_ids']} unique ids for "
            f"{integrity['vectors']} vectors, {integrity['nodes_without_vector']} stored nodes without a vector"
        )
    print(
        f"    ragscope: the file's passages embed in {edit['ragscope_file_embed_seconds_median']:.3f} s; "
        f"update − embedding = {edit['ragscope_update_minus_embed_seconds_median']:.2f} s"
    )

    query = result["query"]
    theirs = query["llamaindex"]["dense"]
    for mode, ours in query["ragscope"].items():
        _row(
            f"query p50 / p95, k = 10 (ragscope {mode})",
            f"{ours['latency']['p50_ms']:.1f} / {ours['latency']['p95_ms']:.1f} ms",
            f"{theirs['latency']['p50_ms']:.1f} / {theirs['latency']['p95_ms']:.1f} ms",
            f"{_times(ours['latency']['p50_ms'], theirs['latency']['p50_ms'])} at p50",
        )
    for mode, ours in query["ragscope"].items():
        _row(
            f"nDCG@10 / recall@10 (ragscope {mode})",
            f"{ours['quality']['ndcg@10']:.3f} / {ours['quality']['recall@10']:.3f}",
            f"{theirs['quality']['ndcg@10']:.3f} / {theirs['quality']['recall@10']:.3f}",
        )
    unwatched = query["ragscope_unwatched_latency"]
    print(f"    ragscope without a watcher (stat of the folder per query): p50 {unwatched['p50_ms']:.1f} ms")

    ask = result["cold_ask"]
    _row(
        "cold ask → first answer byte (median)",
        f"{ask['ragscope_first_byte_seconds_median']:.2f} s",
        f"{ask['llamaindex_first_byte_seconds_median']:.2f} s",
        f"{ask['speedup']:.2f}×",
    )
    print(
        f"    prompts: ragscope {ask['ragscope_prompt_tokens']} tokens (k = {ask['ragscope_k']}, evidence sentences); "
        f"LlamaIndex {ask['llamaindex']['prompt_tokens']} tokens (top {ask['llamaindex']['retrieved']} nodes)"
    )
    met = result["targets"]
    print(
        f"  targets: build ≥ {met['build_target']}× per document at no lower nDCG@10: "
        f"{'met' if met['build_met'] else 'NOT met'} ({met['build_per_document']:.2f}×, nDCG@10 "
        f"{met['ndcg@10_ragscope_default_mode']:.3f} vs {met['ndcg@10_llamaindex']:.3f}); "
        f"edit ≤ {met['edit_target_seconds']:.0f} s + embedding: {'met' if met['edit_met'] else 'NOT met'} "
        f"({met['edit_update_minus_embed_seconds']:.2f} s)"
    )
