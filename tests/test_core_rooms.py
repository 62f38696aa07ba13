"""core/ is grouped into rooms that import one way (core/__init__.py names their order), and
no core module imports another that imports it back, directly or through others."""

from __future__ import annotations

import ast
import re
from pathlib import Path

CORE = Path(__file__).parents[1] / "core"


def room_order() -> list[str]:
    """The rooms in import order, as core/__init__.py's docstring gives them (a < b < ...)."""
    docstring = ast.get_docstring(ast.parse((CORE / "__init__.py").read_text()))
    chain = re.search(r"``\w+``(?:\s*<\s*``\w+``)+", docstring)
    return re.findall(r"``(\w+)``", chain.group(0))


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE).with_suffix("").parts
    return ".".join(("mia.core",) + (parts[:-1] if parts[-1] == "__init__" else parts))


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The core modules that ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mia.core"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in known else node.module)
    return found & known


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in CORE.rglob("*.py")}
    return {name: imported_modules(path, set(paths)) - {name} for name, path in paths.items()}


def test_every_module_lives_in_a_named_room_and_imports_only_earlier_rooms():
    order = room_order()
    assert len(order) >= 5, order
    rooms = {path.name for path in CORE.iterdir() if (path / "__init__.py").is_file()}
    assert rooms == set(order), f"rooms on disk {sorted(rooms)} differ from core/__init__.py's {order}"
    assert sorted(path.name for path in CORE.glob("*.py")) == ["__init__.py"], "a module outside the rooms"
    rank = {room: n for n, room in enumerate(order)}
    backwards = [f"{module} imports {target}" for module, targets in import_graph().items()
                 if module.count(".") >= 3 for target in targets if target.count(".") >= 2
                 and rank[target.split(".")[2]] > rank[module.split(".")[2]]]
    assert not backwards, backwards


def test_no_core_module_imports_itself_back():
    graph, cycles = import_graph(), []

    def visit(module: str, trail: list[str]) -> None:
        for target in graph[module]:
            if target in trail:
                cycles.append(" -> ".join(trail[trail.index(target):] + [target]))
            elif target not in done:
                visit(target, trail + [target])
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert not cycles, cycles
