"""CPU runtimes for the Qwen generators (Qwen2.5-Coder-0.5B-Instruct; the default 1.5B with ``-1.5b``), side by side on
the same prompts.

    python benchmarks/generators.py [--runtimes onnxruntime,torch-float32,torch-bfloat16] [--questions 20]
                                    [--set xquad/beir_en]

A runtime is ``onnxruntime`` (the default export), ``torch-<dtype>``, ``onnx:<folder>`` (another
onnxruntime-genai export of the same model: another precision or int4 accuracy level, made with ``--export``),
``openvino:<folder>[+KEY=VALUE...]`` (an OpenVINO IR folder, e.g. from ``optimum-cli export openvino --task
text-generation-with-past --weight-format int8``, or a GGUF made with ``--requant``, run by OpenVINO GenAI with
those CPU plugin properties; needs openvino-genai), or ``onnxruntime-1.5b`` / ``torch-1.5b-<dtype>`` (the
default generator, Qwen2.5-Coder-1.5B-Instruct, exported once like the 0.5B), so all can be
compared on the same prompts. An onnxruntime runtime takes ``@N`` for N threads (``onnxruntime@1``; default: every
usable core).

    python benchmarks/generators.py --export int4:1,int4:2,fp32 --out /tmp/qwen-exports
    python benchmarks/generators.py --requant q8_0 --out /tmp/qwen-exports   # a GGUF OpenVINO GenAI can read

Each runtime answers the same questions from their gold paragraph (the prompt rag would build: system rules,
the numbered passage, the question, in the model's chat template), one runtime at a time in this process.
Reported per runtime: load seconds, prefill tokens/s (prompt tokens / time to the first token), decode tokens/s
(later tokens / their time), peak RSS growth while it ran (the peak is reset before each runtime on Linux),
and F1 / answer-contained of the answers against the references (after the same citation stripping ``rag eval``
does). The ratios are against the first runtime.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import resource
import statistics
import time
from pathlib import Path
from typing import Any

from quality import data_root  # type: ignore[import-not-found]

from rag.answer.generators.runtimes import ChatRuntime, OnnxRuntime, OpenVinoRuntime, TorchRuntime
from rag.answer.prompting import answer_form, compact_messages
from rag.evaluation import answer_contained, f1_score, load_beir, strip_citations
from rag.models.bundled import QWEN_05B, joined_gguf
from rag.models.convert import (
    export_onnx,
    qwen_05b_onnx,
    qwen_05b_transformers,
    qwen_15b_onnx,
    qwen_15b_transformers,
    requantized_gguf,
)
from rag.text.langdetect import detect_language


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak() -> float:
    """The resident set now, in MB, after resetting the peak (Linux: so each runtime's peak is its own, not the
    largest of the ones before it); elsewhere the process's peak so far."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5", encoding="utf-8")
    now = _status_mb("VmRSS")
    return now if now is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_mb() -> float:
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(spec: str) -> ChatRuntime:
    name, _, count = spec.partition("@")  # "onnxruntime@1": onnxruntime-genai on one thread
    threads = int(count or 0)
    if name == "onnxruntime":
        return OnnxRuntime(qwen_05b_onnx(), threads)
    if name.startswith("onnx:"):
        return OnnxRuntime(Path(name.removeprefix("onnx:")), threads)
    if name.startswith("openvino:"):
        folder, *settings = name.removeprefix("openvino:").split("+")
        return OpenVinoRuntime(Path(folder), properties=dict(item.split("=", 1) for item in settings))
    if name == "onnxruntime-1.5b":
        return OnnxRuntime(qwen_15b_onnx(), threads)
    if name.startswith("torch-1.5b-"):
        return TorchRuntime(qwen_15b_transformers(), dtype=name.removeprefix("torch-1.5b-"))
    dtype = name.removeprefix("torch-")
    return TorchRuntime(qwen_05b_transformers(), dtype=dtype)


def measure(runtime: ChatRuntime, items: list[dict[str, Any]], corpus: dict[str, tuple[str, str]]) -> dict[str, Any]:
    prefill, decode, f1, contained = [], [], [], []
    for item in items:
        title, text = corpus[str(item["context_id"])]
        language = detect_language(item["question"])
        form = answer_form(item["question"], language)
        prompt = runtime.render(compact_messages(item["question"], [f"{title} {text}".strip()], language, form))
        n_prompt = runtime.count_tokens(prompt)
        t0 = time.perf_counter()
        first: float | None = None
        pieces: list[str] = []
        for piece in runtime.stream(prompt, 64):
            if first is None:
                first = time.perf_counter()
            pieces.append(piece)
        end = time.perf_counter()
        answer = "".join(pieces)
        n_answer = runtime.count_tokens(answer)
        if first is not None:
            prefill.append(n_prompt / (first - t0))
            if n_answer > 1 and end > first:
                decode.append((n_answer - 1) / (end - first))
        prediction = strip_citations(answer)
        f1.append(f1_score(prediction, item["answers"], language))
        contained.append(answer_contained(prediction, item["answers"], language))
    return {
        "prefill": statistics.median(prefill),
        "decode": statistics.median(decode) if decode else 0.0,
        "f1": statistics.fmean(f1),
        "contained": statistics.fmean(contained),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runtimes", default="onnxruntime,torch-float32,torch-bfloat16")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--set", default="xquad/beir_en")
    parser.add_argument("--export", default="", help="precision[:int4 accuracy level],... to export, then exit")
    parser.add_argument("--requant", default="", help="q8_0|q4_0|f16: rewrite the bundled GGUF for OpenVINO, then exit")
    parser.add_argument("--out", type=Path, default=Path("qwen-exports"))
    args = parser.parse_args()
    if args.requant:
        target = args.out / f"qwen2.5-coder-0.5b-instruct-{args.requant}.gguf"
        args.out.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        requantized_gguf(joined_gguf(QWEN_05B), target, args.requant)
        print(f"wrote {target} in {time.perf_counter() - t0:.0f} s (run it as openvino:{target})", flush=True)
        return 0
    if args.export:
        for spec in args.export.split(","):
            precision, _, level = spec.partition(":")
            target = args.out / spec.replace(":", "-acc")
            t0 = time.perf_counter()
            export_onnx(qwen_05b_transformers(), target, precision, int(level) if level else None)
            print(f"exported {spec} to {target} in {time.perf_counter() - t0:.0f} s", flush=True)
        return 0
    data = load_beir(data_root() / args.set)
    step = max(1, len(data.qa) // args.questions)
    items = data.qa[::step][: args.questions]
    rows = []
    for name in args.runtimes.split(","):
        before = reset_peak()
        t0 = time.perf_counter()
        runtime = load(name)
        loaded = time.perf_counter() - t0
        scores = measure(runtime, items, data.corpus)
        rows.append((name, loaded, scores, peak_mb() - before))
        print(f"{name}: load {loaded:.1f} s, {scores}", flush=True)
        del runtime
        gc.collect()
    base = rows[0][2]
    print(f"\n{Path(args.set)}: {len(items)} questions from their gold paragraph, greedy, at most 64 new tokens\n")
    print("| runtime | load s | prefill tok/s | decode tok/s | prefill vs first | decode vs first | RSS growth MB "
          "| F1 | contained |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, loaded, s, grown in rows:
        print(
            f"| {name} | {loaded:.1f} | {s['prefill']:.0f} | {s['decode']:.1f} | {s['prefill'] / base['prefill']:.2f}x "
            f"| {s['decode'] / max(base['decode'], 1e-9):.2f}x | {grown:.0f} | {s['f1']:.3f} | {s['contained']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
