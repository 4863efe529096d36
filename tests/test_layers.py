"""The package's structure: no import cycles, layer rules as configured for import-linter,
and a top level holding only the public entry points and the layer packages."""

from __future__ import annotations

from pathlib import Path

import grimp

import inversekit

PACKAGE = Path(inversekit.__file__).resolve().parent
LAYER_PACKAGES = {"front", "optimize", "results", "models", "problem", "derivatives", "linalg"}
TOP_MODULES = {"__init__.py", "__main__.py", "contracts.py", "errors.py"}


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return out


def test_no_import_cycles():
    graph = grimp.build_graph("inversekit")
    # the top-level package re-exports the public API: it imports everything, nothing
    # inside the package may import it back
    importers = {m for m in graph.find_modules_that_directly_import("inversekit")}
    assert importers <= {"inversekit.__main__"}, f"modules importing the top level: {importers}"
    graph.remove_module("inversekit")
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for a, b in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")):
        graph.add_import(importer=a, imported=b)
    assert _cycles(graph) == [["p.a", "p.b", "p.c"]]


def test_top_level_holds_only_entry_points_and_layer_packages():
    files = {p.name for p in PACKAGE.iterdir() if p.suffix == ".py"}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert files == TOP_MODULES
    assert folders == LAYER_PACKAGES
    assert (PACKAGE / "py.typed").is_file()
