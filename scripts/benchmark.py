"""Benchmark this machine: index build, query latency, memory, and scaling to synthetic sizes.

Prints a short table. Everything is built into temporary folders; index/ is never touched.

- build: model load, full build (every text embedded), rebuild with nothing changed, rebuild
  after editing one item, and the ``--if-stale`` check of a fresh process;
- latency: p50/p95 of ``Retriever.search`` and of ``bot.answers.compose.answer`` (when
  present) over the dev-set questions, one at a time;
- memory: resident set size of this process after loading;
- scaling: synthetic knowledge bases of N items made from the real ones (each synthetic item's
  text joins two real clauses and is unique; its translation, titles and questions are copied
  from a real item, so they cost one embedding each however many copies there are). Reported:
  build time, texts actually embedded, vectors, and search latency.

    scripts/benchmark.py [--sizes 1000,10000] [--queries 60]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.settings import Settings  # noqa: E402

if TYPE_CHECKING:
    from bot.knowledge.loader import Knowledge
    from bot.types import Item


def rss_mb() -> float:
    """Current resident set size of this process in MB (Linux), else the peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def latency(fn: Callable[[str], Any], questions: Sequence[str]) -> tuple[float, float]:
    fn(questions[0])  # warm-up
    samples = []
    for question in questions:
        started = time.perf_counter()
        fn(question)
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def synthetic_knowledge(real: Knowledge, size: int, seed: int = 7) -> Knowledge:
    """``size`` items made from the real ones; each has a unique text (two real texts joined)."""
    from bot.knowledge.loader import Knowledge

    rng = random.Random(seed)
    items: list[Item] = []
    for n in range(size):
        a, b = rng.sample(real.items, 2)
        items.append(
            dataclasses.replace(
                a,
                id=f"syn-{n}",
                kind="clause" if a.kind == "header" else a.kind,
                text=f"{a.text}{b.text}",
                blanks=a.blanks + b.blanks,
                links=(),
                source="synthetic",
            )
        )
    return Knowledge(items=tuple(items), parameters=real.parameters)


def edit_one_item(knowledge_dir: Path, n: int) -> None:
    """Add one alternate question to clause 3.2 (a typical small edit)."""
    path = knowledge_dir / "agreement.toml"
    text = path.read_text(encoding="utf-8")
    start = text.index('id = "3.2"')
    anchor = text.index("questions = [\n", start) + len("questions = [\n")
    path.write_text(
        text[:anchor] + f'    "基准测试新增{n}：季度服务费几号前付？",\n' + text[anchor:],
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="synthetic sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=60, help="questions timed per setting")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    from bot.knowledge.loader import load_knowledge
    from bot.search.build import build_index
    from bot.search.index import load_index

    sys.path.insert(0, str(ROOT / "scripts"))
    from evaluate import load_devset

    rows: list[tuple[str, str]] = []
    base = Settings()
    work = Path(tempfile.mkdtemp(prefix="contract-bot-bench-"))
    try:
        knowledge_dir = work / "knowledge"
        shutil.copytree(base.knowledge_dir, knowledge_dir)
        settings = base.model_copy(
            update={"index_dir": work / "index", "knowledge_dir": knowledge_dir}
        )
        knowledge = load_knowledge(knowledge_dir)
        rows.append(("machine", f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}"))

        from bot.model.loading import load_model

        seconds, model = timed(lambda: load_model(settings))
        rows.append(("model load", f"{seconds:.1f} s"))

        seconds, report = timed(
            lambda: build_index(settings, force=True, progress=False, model=model)
        )
        rows.append(
            (
                "full build",
                f"{seconds:.1f} s ({report.embedded} item texts and "
                f"{report.off_topics_embedded} off-topic texts embedded)",
            )
        )
        seconds, report = timed(lambda: build_index(settings, progress=False))
        rows.append(("rebuild, nothing changed", f"{seconds:.2f} s (model not needed)"))
        edit_one_item(knowledge_dir, 1)
        seconds, report = timed(lambda: build_index(settings, progress=False, model=model))
        rows.append(
            (
                "rebuild after editing 3.2",
                f"{seconds:.2f} s, model loaded ({report.embedded} embedded, "
                f"{report.reused} reused)",
            )
        )
        edit_one_item(knowledge_dir, 2)  # and once more as a fresh CLI process would
        env = {
            **os.environ,
            "BOT_INDEX_DIR": str(settings.index_dir),
            "BOT_KNOWLEDGE_DIR": str(knowledge_dir),
        }
        command = [sys.executable, str(ROOT / "scripts" / "build_index.py"), "--quiet"]
        seconds, _ = timed(lambda: subprocess.run(command, env=env, capture_output=True))
        rows.append(("  same, as a fresh process", f"{seconds:.1f} s (includes model load)"))
        stale_check = [*command, "--if-stale"]
        seconds, _ = timed(lambda: subprocess.run(stale_check, env=env, capture_output=True))
        rows.append(("--if-stale, up to date", f"{seconds:.2f} s (fresh process, no torch)"))

        from bot.search.retrieval import Retriever

        knowledge = load_knowledge(knowledge_dir)
        retriever = Retriever.load(settings, knowledge=knowledge, model=model)
        questions = [q.text for q in load_devset()][: args.queries]
        p50, p95 = latency(retriever.search, questions)
        rows.append(("search latency", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"))
        try:
            from bot.answers.compose import answer
        except ImportError:
            rows.append(("answer latency", "skipped (bot.answers.compose not present)"))
        else:

            def whole_answer(question: str) -> Any:
                return answer(question, retriever)

            p50, p95 = latency(whole_answer, questions)
            rows.append(("answer latency", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"))
        rows.append(("process RSS", f"{rss_mb():.0f} MB (model + index loaded)"))

        for size in sizes:
            synthetic = synthetic_knowledge(knowledge, size)
            syn_settings = settings.model_copy(update={"index_dir": work / f"index-{size}"})
            # Seed with the real build so that the copied texts are not embedded again.
            shutil.copytree(retriever.index.path, syn_settings.index_dir / ".index.seed")
            (syn_settings.index_dir / "current").symlink_to(".index.seed")
            started = time.perf_counter()
            report = build_index(syn_settings, knowledge=synthetic, model=model, progress=True)
            seconds = time.perf_counter() - started
            index = load_index(syn_settings, synthetic)
            syn = Retriever(syn_settings, synthetic, index, model, retriever.abstention)
            p50, p95 = latency(syn.search, questions)
            rows.append(
                (
                    f"synthetic {size:,} items",
                    f"build {seconds:.0f} s ({report.embedded:,} of {report.vectors:,} vectors "
                    f"embedded); search p50 {p50:.1f} ms, p95 {p95:.1f} ms; RSS {rss_mb():.0f} MB",
                )
            )
            del syn, index
    finally:
        shutil.rmtree(work, ignore_errors=True)

    width = max(len(label) for label, _ in rows)
    print(f"benchmark {time.strftime('%Y-%m-%d %H:%M')}")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
