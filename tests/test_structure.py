"""The house rules of the package: no import cycles, no module importing from a package above it, and an
engine that holds only the request process."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "simulator"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(name: str) -> bool:
    return (PKG.parent / Path(*name.split(".")) / "__init__.py").is_file()


def _exists(name: str) -> bool:
    p = PKG.parent / Path(*name.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                lines.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return lines


def imports() -> dict[str, list[tuple[str, int]]]:
    """module -> [(simulator module it imports at run time, line)] (TYPE_CHECKING blocks excluded)."""
    graph = {}
    for path in sorted(PKG.rglob("*.py")):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text())
        skip = _type_checking_lines(tree)
        out = []
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not target.startswith("simulator"):
                    continue
                for alias in node.names:  # `from . import x` may name a submodule
                    sub = f"{target}.{alias.name}"
                    out.append((sub if _exists(sub) else target, node.lineno))
            elif isinstance(node, ast.Import):
                out += [(a.name, node.lineno) for a in node.names if a.name.startswith("simulator")]
        graph[name] = out
    return graph


def test_no_circular_imports():
    graph = {m: {t for t, _ in deps if t != m} for m, deps in imports().items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(m, stack):
        state[m] = 1
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_imports_from_a_package_above_it():
    bad = []
    for m, deps in imports().items():
        for target, line in deps:
            # a package's __init__ sits above its modules: importing it from inside is an import back up
            if _is_package(target) and m != target and m.startswith(target + "."):
                bad.append(f"{m}:{line} imports {target}")
    assert not bad, bad


def test_engine_holds_only_the_request_process():
    src = (PKG / "engine.py").read_text()
    assert len(src.splitlines()) < 200
    top = {n.name for n in ast.parse(src).body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    assert top == {"Simulation", "simulate"}
