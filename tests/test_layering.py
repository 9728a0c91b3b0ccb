"""Imports run one way between rooms, and no room reaches into another's private names.

Read from the source with ``ast`` (nothing is imported), lazy imports inside functions
included: they are how the rooms keep ``--help`` fast, and they are dependencies all
the same. A room is a top-level folder of the package; ``cli.py``, ``demo.py`` and the
other modules at the root are the room ``top``. The README's "Data flow" section draws
the same arrows.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "dotcom_mobile"

#: room -> the rooms it may import. Everything else is a backwards (or sideways) arrow.
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "train": {"model"},
    "quantize": {"model", "train"},  # quantization-aware training runs train.loop
    "export": {"model", "quantize"},  # a quantized .pt2 is loaded through quantize.api
    "report": {"model"},  # params and MACs of an artifact's model (model.flops)
    "bench": {"report", "export", "model"},  # export.pte: what a .pte is, checked before a runner loads it
    "devices": {"report", "export", "model"},  # export.manifest checks what goes to the phone
    "perf": {"bench", "report", "export", "quantize", "train", "model"},
    "top": {"bench", "devices", "report", "export", "quantize", "train", "model"},
}


@lru_cache(maxsize=None)
def rooms() -> tuple[str, ...]:
    """Top-level folders that are sub-packages (have an ``__init__.py``)."""
    return tuple(sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name != "tests"))


def package_modules() -> dict[str, Path]:
    """``dotcom_mobile.x.y`` -> file, for the root modules and every room."""
    files = [p for p in ROOT.glob("*.py")]
    for room in rooms():
        files += sorted((ROOT / room).rglob("*.py"))
    out = {}
    for f in files:
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join([PACKAGE, *parts])] = f
    return out


def room_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in rooms()) else "top"


def imports(module: str, source: str, is_package: bool = False) -> list[tuple[str, list[str], int]]:
    """(absolute module, imported names, line) for every import of ``dotcom_mobile`` code."""
    base = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, [a.name for a in node.names], node.lineno))
    return [(m, names, line) for m, names, line in found if m == PACKAGE or m.startswith(PACKAGE + ".")]


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """Every import in ``source`` that breaks the direction or takes another room's private name."""
    room = room_of(module)
    out = []
    for target, names, line in imports(module, source, is_package):
        dest = room_of(target)
        if dest == room:
            continue
        if dest not in ALLOWED.get(room, set()):
            out.append(f"{module}:{line}: {room} -> {dest} ({target})")
        private = [n for n in names if n.startswith("_")]
        if private:
            out.append(f"{module}:{line}: private {', '.join(private)} from {target} (another room)")
    return out


def test_every_room_is_in_the_matrix():
    assert set(rooms()) | {"top"} == set(ALLOWED), "a new room needs its place in ALLOWED (and the README)"


def test_the_allowed_arrows_have_no_cycle():
    done: list[str] = []
    while len(done) < len(ALLOWED):
        ready = [r for r, deps in ALLOWED.items() if r not in done and deps <= set(done)]
        assert ready, f"cycle among {sorted(set(ALLOWED) - set(done))}"
        done += ready


def test_imports_run_one_way_and_private_names_stay_home():
    modules = package_modules()
    assert f"{PACKAGE}.cli" in modules and f"{PACKAGE}.bench.runners" in modules  # the walk found the code
    found = []
    for module, path in modules.items():
        found += violations(module, path.read_text(), is_package=path.name == "__init__.py")
    assert not found, "\n".join(found)


def test_no_import_cycle_between_modules():
    """A module never reaches itself through imports (lazy ones too): checkpoint <-> registry was one."""
    modules = package_modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        deps = set()
        for target, names, _ in imports(module, path.read_text(), is_package=path.name == "__init__.py"):
            subs = {f"{target}.{n}" for n in names if f"{target}.{n}" in modules}
            deps |= subs or ({target} if target in modules else set())
        graph[module] = deps - {module}
    # Package __init__ files re-export their room: leave them out, they are a room's front door.
    inits = {m for m, p in modules.items() if p.name == "__init__.py"}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node] - inits):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for m in sorted(set(graph) - inits):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("dotcom_mobile.model.flops", "from dotcom_mobile.bench.runners import run_python", "model -> bench"),
    ("dotcom_mobile.report.render", "def f():\n    from dotcom_mobile.bench import suite", "report -> bench"),
    ("dotcom_mobile.export.api", "import dotcom_mobile.devices.android", "export -> devices"),
    ("dotcom_mobile.train.loop", "from ..quantize.api import quantize_model", "train -> quantize"),
    ("dotcom_mobile.report.latency", "from dotcom_mobile.model.registry import _build", "private _build"),
])
def test_the_check_catches_a_backwards_import(module, source, expected):
    found = violations(module, source)
    assert len(found) == 1 and expected in found[0], found


def test_the_check_lets_the_right_direction_through():
    assert violations("dotcom_mobile.bench.runners", "from dotcom_mobile.report.latency import make_report") == []
    assert violations("dotcom_mobile.model.flops", "from .registry import _build") == []  # same room
    assert violations("dotcom_mobile.demo", "from dotcom_mobile.bench.suite import plan") == []
