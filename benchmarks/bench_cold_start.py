"""Cold start and first token: how long a new `ragscope ask` process takes to print the first word of its answer,
against a process that does nothing but import the model libraries and load both models, measured in the same
run; and the first token of a question in a process whose models are loaded.

1. **Cold `ragscope ask`** (`python -m ragscope ask QUESTION --k 4`, the shipped knowledge already indexed in a
   scratch data dir): seconds from starting the process to the first byte of the answer on stdout (the CLI prints
   one header line, then streams the answer). **Baseline**: a process that imports torch, sentence_transformers
   and llama_cpp (and onnxruntime when `[embedding] backend` is an ONNX one), loads the configured embedder
   (bare `SentenceTransformer` on the bundled all-MiniLM-L6-v2 for "torch"; the engine's own constructor for the
   ONNX backends, so the export is found the same way) and the default GGUF with `llama_cpp.Llama`, then writes
   one byte. Ratio = median cold ask ÷ median baseline; target ≤ 1.1. A second baseline does the same and then
   has llama.cpp read the exact prompt the question gets, to its first token: the work no RAG process can skip.
   And `ragscope ask` as it was before (`SEQUENTIAL`: no background loading, the system prompt evaluated by the
   first question), for the change's own effect. Rounds alternate the four (the machine may be shared), after one
   unmeasured round of each so that all read the files from the page cache.
2. **Warm first token**: one `Engine`, models loaded and one question answered; then each question of the shipped
   `questions.jsonl` files (k = 4): seconds from `Engine.answer` to its first token (target: median ≤ 1 s).
   Beside it, in the same run, a bare `llama_cpp.Llama` reading each of those very prompts from an empty cache to
   its first token: what the prompt costs the model without the system prompt's kept state and without the
   engine's own steps (embed, search, evidence, prompt); and the same with one thread, to see what the second
   core adds to reading a prompt on this machine.
3. **Index loading**, for the mmap decision: FAISS's exact index of N unit vectors (384-d) loaded from the
   stored .npz (today's layout: the FAISS bytes beside the metadata JSON) against `faiss.read_index` of a bare
   index file with `IO_FLAG_MMAP_IFC | IO_FLAG_READ_ONLY`, each with its first search, at the shipped size and
   at 13,394 passages (SciFact's); and the whole stored file with the passages' JSON, for scale.

Usage: python -m benchmarks.bench_cold_start [--runs 5] [--questions 12] [--json] [--no-save]
Run it under `flock /tmp/ragscope-bench.lock` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag_engine.config import Config, load_config
from rag_engine.engine import Engine
from rag_engine.generate.generation import gguf_path
from rag_engine.ingest.embedding import bundled_model_path
from rag_engine.ingest.storage import load_domain_index, save_domain_index
from rag_engine.search.index import FaissIndex, Floats

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "bench_cold_start.json"
QUESTION = "When did the Suez Canal open?"
TARGET_RATIO = 1.1
TARGET_WARM_SECONDS = 1.0
SCIFACT_PASSAGES = 13_394
DIMENSION = 384

# The baseline process: argv = embedder mode ("torch" or "engine"), embedder path or config file, GGUF, n_ctx,
# n_threads, seed, extra module to import ("" for none), a prompt file ("" for none). Writes one byte once both
# models are loaded (and, with a prompt, once the model has read it and given its first token).
BASELINE = """
import importlib, sys
mode, embedder, gguf, n_ctx, n_threads, seed, extra, prompt = sys.argv[1:9]
import torch, sentence_transformers, llama_cpp
if extra:
    importlib.import_module(extra)
if mode == "torch":
    sentence_transformers.SentenceTransformer(embedder, device="cpu")
else:
    from rag_engine.config import load_config
    from rag_engine.ingest.embedding import SentenceTransformerEmbedder
    SentenceTransformerEmbedder(load_config(embedder).embedding)
llm = llama_cpp.Llama(model_path=gguf, n_ctx=int(n_ctx), n_threads=int(n_threads), seed=int(seed), verbose=False)
if prompt:
    tokens = llm.tokenize(open(prompt, "rb").read(), add_bos=True, special=True)
    next(iter(llm.create_completion(tokens, max_tokens=1, temperature=0.0, stream=True)))
sys.stdout.buffer.write(b"x")
sys.stdout.flush()
"""


# `ragscope ask` as it was before this benchmark's change: nothing loads in the background (each model is made
# when first needed, one after the other) and the system prompt is evaluated by the first question.
SEQUENTIAL = """
import sys
from rag_engine.generate.generation import LlamaGenerator
from rag_engine.seams import Lazy
Lazy.start = lambda self: None
LlamaGenerator.warm = lambda self, system: None
from ragscope.cli import main
sys.exit(main(sys.argv[1:]))
"""


def machine() -> dict[str, Any]:
    """The machine, and how busy it was (a shared machine makes timings noisy)."""
    lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}


def first_byte_seconds(command: list[str], env: dict[str, str], skip_lines: int) -> float:
    """Seconds from starting `command` to the first byte of stdout after `skip_lines` lines; the process is then
    run to its end (and must succeed)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=errors, bufsize=0)
        assert process.stdout is not None
        for _ in range(skip_lines):
            while process.stdout.read(1) not in (b"\n", b""):
                pass
        first = process.stdout.read(1)
        seconds = time.perf_counter() - started
        rest = process.stdout.read()
        if process.wait() != 0 or not first:
            errors.seek(0)
            raise RuntimeError(f"{command[:4]} failed: {errors.read().decode(errors='replace')[-2000:]}\n{rest!r}")
    return seconds


def baseline_command(config: Config, config_file: Path, prompt: Path | None = None) -> tuple[list[str], str]:
    """The baseline process for the configured embedding backend (reading `prompt` after the loads, if given),
    and how it loads the embedder."""
    backend = getattr(config.embedding, "backend", "torch")
    generation = config.generation
    gguf = str(gguf_path(generation))
    numbers = [str(generation.max_context_tokens), str(generation.n_threads), str(generation.seed)]
    if backend == "torch":
        embedder = str(bundled_model_path()) if config.embedding.model == "all-MiniLM-L6-v2" else config.embedding.model
        command = [sys.executable, "-c", BASELINE, "torch", embedder, gguf, *numbers, "", str(prompt or "")]
        return command, "bare SentenceTransformer"
    command = [sys.executable, "-c", BASELINE, "engine", str(config_file), gguf, *numbers, "onnxruntime"]
    return [*command, str(prompt or "")], f"the engine's embedder constructor ({backend})"


def cold_start(config: Config, runs: int) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    config_file = REPO / "config.toml"
    baseline, embedder_load = baseline_command(config, config_file)
    with tempfile.TemporaryDirectory(prefix="ragscope-bench-cold-") as scratch:
        data = ["--data-dir", scratch]
        subprocess.run([sys.executable, "-m", "ragscope", "index", *data], cwd=REPO, env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        arguments = ["ask", QUESTION, "--k", "4", *data]
        ask = [sys.executable, "-m", "ragscope", *arguments]
        # The exact prompt this question gets, for the second baseline: the loads, then reading that prompt.
        traced = subprocess.run([*ask, "--json"], cwd=REPO, env=env, check=True, capture_output=True, text=True)
        prompt_file = Path(scratch) / "prompt.txt"
        prompt_file.write_text(json.loads(traced.stdout)["prompt"], encoding="utf-8")
        # (command, header lines before the first byte that counts)
        arms = {
            "ask": (ask, 1),
            "ask_sequential": ([sys.executable, "-c", SEQUENTIAL, *arguments], 1),
            "baseline": (baseline, 0),
            "baseline_plus_prompt": (baseline_command(config, config_file, prompt_file)[0], 0),
        }
        seconds: dict[str, list[float]] = {name: [] for name in arms}
        for round_number in range(runs + 1):  # round 0 fills the page cache and is not counted
            measured = {name: first_byte_seconds(command, env, lines) for name, (command, lines) in arms.items()}
            if round_number:
                for name, value in measured.items():
                    seconds[name].append(value)
            shown = ", ".join(f"{name} {value:.2f} s" for name, value in measured.items())
            print(f"  round {round_number}: {shown}", file=sys.stderr)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    return {
        "question": QUESTION,
        "k": 4,
        "baseline_embedder_load": embedder_load,
        "seconds": {name: [round(value, 3) for value in values] for name, values in seconds.items()},
        "median_seconds": {name: round(value, 3) for name, value in medians.items()},
        "ratio": round(medians["ask"] / medians["baseline"], 3),
        "target_ratio": TARGET_RATIO,
        "ratio_to_baseline_plus_prompt": round(medians["ask"] / medians["baseline_plus_prompt"], 3),
        "ratio_sequential": round(medians["ask_sequential"] / medians["baseline"], 3),
    }


def shipped_questions(count: int) -> list[tuple[str, str]]:
    """Up to `count` questions, taken in turn from each shipped domain's questions.jsonl."""
    per_domain = []
    for folder in sorted(p for p in (REPO / "knowledge").iterdir() if (p / "questions.jsonl").is_file()):
        lines = (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines()
        per_domain.append([(json.loads(line)["question"], folder.name) for line in lines if line.strip()])
    mixed = [row for rows in zip(*per_domain, strict=False) for row in rows]
    return mixed[:count]


def warm_first_token(config: Config, count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ragscope-bench-warm-") as scratch:
        engine = Engine(config.with_paths(data_dir=Path(scratch)))
        engine.sync_all()
        engine.answer("How long is the Panama Canal?", "history", k=4)  # models loaded, one question asked
        shipped_passages = sum(engine.domain_stats(domain).passages for domain in engine.domains())
        firsts, prompts, sizes = [], [], []
        for question, domain in shipped_questions(count):
            answer = engine.answer(question, domain, k=4)
            if "first_token" in answer.timings:  # covered: something was generated
                firsts.append(answer.timings["first_token"])
                prompts.append(answer.prompt)
                sizes.append(answer.prompt_tokens)
    bare_firsts, bare_tokens = bare_reading(config, prompts, config.generation.n_threads)
    one_thread, _ = bare_reading(config, prompts, 1)  # does the second core help llama.cpp read here?
    median = statistics.median(firsts)
    reading = sum(bare_tokens) / sum(bare_firsts)
    return {
        "shipped_passages": shipped_passages,
        "questions": len(firsts),
        "k": 4,
        "first_token_seconds": [round(s, 3) for s in firsts],
        "median_seconds": round(median, 3),
        "max_seconds": round(max(firsts), 3),
        "bare_llama_prompt_first_token_seconds": [round(s, 3) for s in bare_firsts],
        "bare_llama_median_seconds": round(statistics.median(bare_firsts), 3),
        "ratio_to_bare_llama": round(median / statistics.median(bare_firsts), 3),
        "prompt_tokens_median": statistics.median(sizes),
        "bare_llama_prompt_tokens_per_second": round(reading, 1),
        "bare_llama_threads": config.generation.n_threads,
        "bare_llama_one_thread_prompt_tokens_per_second": round(sum(bare_tokens) / sum(one_thread), 1),
        "target_median_seconds": TARGET_WARM_SECONDS,
    }


def bare_reading(config: Config, prompts: list[str], threads: int) -> tuple[list[float], list[int]]:
    """A bare llama.cpp reading each prompt from an empty cache to its first token: seconds and token counts."""
    from llama_cpp import Llama

    generation = config.generation
    bare = Llama(model_path=str(gguf_path(generation)), n_ctx=generation.max_context_tokens,
                 n_threads=threads, seed=generation.seed, verbose=False)  # fmt: skip
    seconds, sizes = [], []
    for prompt in prompts:
        tokens = bare.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        bare.reset()  # type: ignore[no-untyped-call]
        started = time.perf_counter()
        next(iter(bare.create_completion(tokens, max_tokens=1, temperature=0.0, stream=True)))
        seconds.append(time.perf_counter() - started)
        sizes.append(len(tokens))
    return seconds, sizes


def timed(action: Any, repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def index_loading(sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    import faiss

    rows = []
    rng = np.random.default_rng(7)
    for size in sizes:
        vectors = rng.standard_normal((size, DIMENSION)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        index = FaissIndex(DIMENSION)
        index.add(np.arange(size, dtype=np.int64) * 7919 + 1, vectors)
        query = vectors[:1]
        with tempfile.TemporaryDirectory(prefix="ragscope-bench-mmap-") as scratch:
            stored, bare = Path(scratch) / "domain.npz", Path(scratch) / "domain.faiss"
            meta = {"passages": [{"id": i, "text": "x" * 700} for i in range(size)]}  # 800-char passages' JSON
            save_domain_index(stored, index, meta)
            faiss.write_index(faiss.clone_index(index._index), str(bare))

            def from_npz(stored: Path = stored, query: Floats = query) -> None:
                with np.load(stored, allow_pickle=False) as archive:
                    FaissIndex.from_bytes(archive["faiss"].tobytes()).search(query, 4)

            def from_mmap(bare: Path = bare, query: Floats = query) -> None:
                flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY
                faiss.read_index(str(bare), flags).search(query, 4)

            def whole_file(stored: Path = stored) -> None:
                load_domain_index(stored)

            whole, npz, mapped = timed(whole_file, repeats), timed(from_npz, repeats), timed(from_mmap, repeats)
            rows.append({
                "passages": size,
                "vectors_megabytes": round(size * DIMENSION * 4 / 1e6, 1),
                "npz_faiss_load_and_search_ms": round(npz * 1000, 2),
                "mmap_load_and_search_ms": round(mapped * 1000, 2),
                "saved_ms": round((npz - mapped) * 1000, 2),
                "whole_stored_file_ms": round(whole * 1000, 2),
            })  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured rounds of cold ask + baseline")
    parser.add_argument("--questions", type=int, default=12, help="questions for the warm first token")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--no-save", action="store_true", help=f"do not write {RESULTS.relative_to(REPO)}")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    config = load_config(REPO / "config.toml")
    host = machine()
    print("cold start ...", file=sys.stderr)
    cold = cold_start(config, args.runs)
    print("warm first token ...", file=sys.stderr)
    warm = warm_first_token(config, args.questions)
    loading = index_loading([warm.pop("shipped_passages"), SCIFACT_PASSAGES], repeats=7)
    result = {
        "machine": {**host, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "python": sys.version.split()[0],
        "generator": config.generation.model_path or config.generation.model,
        "embedding": {"model": config.embedding.model, "backend": getattr(config.embedding, "backend", "torch")},
        "cold_ask": cold,
        "warm_first_token": warm,
        "index_loading": loading,
        "met": cold["ratio"] <= TARGET_RATIO and warm["median_seconds"] <= TARGET_WARM_SECONDS,
    }
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result))
    else:
        median = cold["median_seconds"]
        print(
            f"cold ask to first answer byte: median {median['ask']} s (sequential loads, as before: "
            f"{median['ask_sequential']} s); baseline (imports + both models loaded) {median['baseline']} s; ratio "
            f"{cold['ratio']} (target ≤ {TARGET_RATIO}); baseline + reading the same prompt "
            f"{median['baseline_plus_prompt']} s, ratio {cold['ratio_to_baseline_plus_prompt']}"
        )
        print(
            f"warm first token, k = 4: median {warm['median_seconds']} s, max {warm['max_seconds']} s over "
            f"{warm['questions']} questions (target ≤ {TARGET_WARM_SECONDS} s); bare llama.cpp on the same "
            f"prompts from an empty cache: {warm['bare_llama_median_seconds']} s (median prompt "
            f"{warm['prompt_tokens_median']} tokens, read at {warm['bare_llama_prompt_tokens_per_second']} tokens/s)"
        )
        for row in loading:
            print(
                f"index of {row['passages']} passages: npz {row['npz_faiss_load_and_search_ms']} ms, mmap "
                f"{row['mmap_load_and_search_ms']} ms (saves {row['saved_ms']} ms); whole stored file "
                f"{row['whole_stored_file_ms']} ms"
            )
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
