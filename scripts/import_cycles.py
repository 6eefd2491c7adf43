"""Find import cycles among the modules of a package, counting imports made inside functions too.

    python scripts/import_cycles.py [src/napari_mia/engine] [--package-root src]

Every ``import`` and ``from ... import`` anywhere in a module (top level, functions, ``if TYPE_CHECKING``
blocks excepted) is an edge to the module it names; ``from . import x`` counts as an import of ``x`` when
``x`` is a module. Imports of a module's own parent packages are
left out: a package is initialised before its submodules. Cycles are the strongly connected components of
more than one module. Exits 1 and prints each cycle when there is one, 0 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every Import / ImportFrom node, skipping the bodies of ``if TYPE_CHECKING:`` (types only, never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def edges(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(), str(path))
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                # `from pkg import mod` imports mod; `from mod import name` imports mod.
                targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in modules else prefix for a in node.names]
            for t in targets:
                # The longest known module the name starts with: "a.b.c" -> "a.b" when c is a name in a.b.
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                # A package is always initialised before its submodules: an edge up to it is no cycle.
                if t and t != name and not name.startswith(t + "."):
                    graph[name].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", default=str(here / "src" / "napari_mia" / "engine"),
                        help="the package folder to check (default: the engine)")
    parser.add_argument("--package-root", default=None,
                        help="the folder module names start from (default: the package's nearest folder "
                             "without an __init__.py)")
    a = parser.parse_args(argv)
    package = Path(a.package).resolve()
    root = Path(a.package_root).resolve() if a.package_root else package
    if not a.package_root:
        while (root / "__init__.py").exists():
            root = root.parent
    modules = {module_name(p, root): p for p in sorted(package.rglob("*.py"))}
    found = cycles(edges(modules))
    for comp in found:
        print(f"import cycle ({len(comp)} modules): " + ", ".join(comp))
    if not found:
        print(f"no import cycle among {len(modules)} modules under {package}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
