"""The import graph shows the layers: no module imports from a layer above its own, and there is no import
loop. Read from the source (``ast``), so it checks every import, including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.datasets import REPO

PACKAGE = REPO / "speechsvc"

# Lowest first. A module may import its own layer and the layers below it.
LAYERS: list[tuple[str, set[str]]] = [
    ("base", {"types", "errors", "log", "config", "metrics", "workers", "protocol", "wordtext", "v1", "security"}),
    ("stages", {"speech", "models"}),
    ("analysis", {"analysis"}),
    ("runtime", {"runtime"}),
    ("batch", {"batch"}),
    ("transports", {"transports", "console"}),
    ("app", {"app", "server"}),
    ("tools", {"clients", "evaluation", "training", "cli"}),
]


def layer_of(module: str) -> int:
    top = module.split(".")[1] if module.count(".") else "__init__"
    if top == "__init__":
        return 0
    for i, (_, names) in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"speechsvc.{top} belongs to no layer; add it to LAYERS")


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if "_pb2" not in name:
            out[name] = path
    return out


def imports(path: Path, name: str) -> set[str]:
    found = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("speechsvc"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base]).strip(".")
            if base.startswith("speechsvc"):
                found.add(base)
    return found


def test_no_import_from_a_higher_layer() -> None:
    wrong = []
    for name, path in modules().items():
        for target in imports(path, name):
            if layer_of(target) > layer_of(name):
                wrong.append(f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    assert not wrong, "\n".join(wrong)


def test_no_import_loops() -> None:
    mods = modules()
    graph = {name: {t for t in imports(path, name) if t in mods and t != name} for name, path in mods.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])
    # A package's __init__ importing its own submodules is how packages work, not a loop between modules.
    real = [c for c in cycles if not all(p.startswith(c.split(" -> ")[0]) for p in c.split(" -> "))]
    assert not real, "\n".join(real)
