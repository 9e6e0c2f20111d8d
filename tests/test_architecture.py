"""Which way imports point, checked from the source (plain ``ast``, nothing imported).

The graph holds every ``import`` and ``from ... import`` of the project's modules:
module level, inside functions and under ``if TYPE_CHECKING:`` alike (a type-only
import still means two modules that need each other). ``from pkg import name`` is an
edge to ``pkg.name`` when that is a module, else to ``pkg``; ``import a.b.c`` is an edge
to ``a.b.c``.

- No cycle among the project's modules.
- Layers, from the top: ``api -> gateway -> voice_core``; a lower layer never imports a
  higher one. The SDK (``voxline``) talks to the server only over HTTP, so it imports
  none of them, and no installed package imports ``benchmarks`` (not installed).
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("api", "gateway", "voice_core", "voxline", "benchmarks")

# package -> the top-level packages it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "voice_core": ("gateway", "api", "voxline", "benchmarks"),
    "gateway": ("api", "voxline", "benchmarks"),
    "api": ("benchmarks",),
    "voxline": ("api", "gateway", "voice_core", "benchmarks"),
}

Graph = dict[str, dict[str, int]]  # module -> {imported module: line of the first import}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            modules[module_name(path, root)] = path
    return modules


def _base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a (possibly relative) ``from X import`` names."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    if not is_package:
        parts.pop()  # a module's relative imports start from its package
    if node.level > 1:
        parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, *([node.module] if node.module else [])])


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """``(imported project module, line)`` for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known(alias.name, modules)
                if target:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, is_package, node)
            for alias in node.names:
                target = f"{base}.{alias.name}" if base else alias.name
                if target in modules:
                    yield target, node.lineno
                elif base in modules:
                    yield base, node.lineno
                else:
                    known = _known(base, modules)
                    if known:
                        yield known, node.lineno


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """``name`` or its longest prefix that is a project module (``import a.b`` where
    only ``a`` is ours still depends on ``a``)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_graph(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> Graph:
    modules = project_modules(root, packages)
    graph: Graph = {m: {} for m in modules}
    for module, path in modules.items():
        for target, line in imports_of(module, path, modules):
            if target != module:
                graph[module].setdefault(target, line)
    return graph


def strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's components with more than one module (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return sorted(out)


def one_cycle(graph: Graph, component: list[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first)."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node]):
            if child not in members:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    raise AssertionError(f"no cycle in {component}")  # a component always has one


def describe(graph: Graph, cycle: list[str], modules: dict[str, Path], root: Path) -> str:
    hops = []
    for a, b in itertools.pairwise(cycle):
        hops.append(f"  {modules[a].relative_to(root)}:{graph[a][b]} imports {b}")
    return " -> ".join(cycle) + "\n" + "\n".join(hops)


def layer_violations(graph: Graph) -> list[tuple[str, str, int]]:
    found = []
    for module, targets in sorted(graph.items()):
        banned = FORBIDDEN.get(module.split(".", 1)[0], ())
        for target, line in sorted(targets.items()):
            if target.split(".", 1)[0] in banned:
                found.append((module, target, line))
    return found


# --- the rules, on the real tree -------------------------------------------------------


def test_no_import_cycle() -> None:
    graph = import_graph()
    modules = project_modules(ROOT, PACKAGES)
    report = []
    for component in strongly_connected(graph):
        cycle = one_cycle(graph, component)
        report.append(describe(graph, cycle, modules, ROOT))
        if len(component) > len(cycle) - 1:
            # one cycle shown; the others share these modules
            report.append(f"  (one of the cycles among: {', '.join(component)})")
    assert not report, "import cycle(s):\n" + "\n".join(report)


def test_no_import_from_a_lower_layer_to_a_higher_one() -> None:
    graph = import_graph()
    modules = project_modules(ROOT, PACKAGES)
    report = "\n".join(
        f"  {modules[m].relative_to(ROOT)}:{line} imports {t}"
        for m, t, line in layer_violations(graph)
    )
    assert not report, f"imports against the layers (api -> gateway -> voice_core):\n{report}"


# --- the checker itself, on a small tree ------------------------------------------------


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg import b\nimport os\n",
        "pkg/b.py": "def f():\n    from . import c\n",  # function level, relative
        "pkg/c.py": "from pkg.a import thing\n",  # a name in a module: edge to the module
        "pkg/d.py": "from pkg import VALUE\nimport pkg.sub.e\n",  # a name in a package
        "pkg/sub/__init__.py": "from .e import X\n",
        "pkg/sub/e.py": "from ..a import y\n",
        "low/__init__.py": "",
        "low/x.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.d\n",
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_graph_resolves_every_kind_of_import(tree: Path) -> None:
    graph = import_graph(tree, ("pkg", "low"))
    assert set(graph["pkg.a"]) == {"pkg.b"}
    assert set(graph["pkg.b"]) == {"pkg.c"}
    assert set(graph["pkg.c"]) == {"pkg.a"}
    assert set(graph["pkg.d"]) == {"pkg", "pkg.sub.e"}
    assert set(graph["pkg.sub"]) == {"pkg.sub.e"}
    assert set(graph["pkg.sub.e"]) == {"pkg.a"}
    assert set(graph["low.x"]) == {"pkg.d"}


def test_cycles_are_found_and_spelled_out(tree: Path) -> None:
    graph = import_graph(tree, ("pkg", "low"))
    assert strongly_connected(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
    assert one_cycle(graph, ["pkg.a", "pkg.b", "pkg.c"]) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    modules = project_modules(tree, ("pkg", "low"))
    text = describe(graph, ["pkg.a", "pkg.b", "pkg.c", "pkg.a"], modules, tree)
    assert "pkg/b.py:2 imports pkg.c" in text


def test_layer_violations_name_the_file_and_line(tree: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(FORBIDDEN, "low", ("pkg",))
    assert layer_violations(import_graph(tree, ("pkg", "low"))) == [("low.x", "pkg.d", 3)]
