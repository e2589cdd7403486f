"""The package's modules import one another in one direction: no cycle, ever.

Every import counts, also those under ``TYPE_CHECKING`` and inside functions: a cycle hidden
there is still a design knot (the engine calling back into the client, say).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sendgrid_ipam"


def _module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module of ``root`` and the modules of the package it imports."""
    modules = {_module_name(root, p): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                # `from pkg import module` depends on the module; `from pkg import name`, on
                # the package (whose __init__ defines or re-exports the name).
                target = _resolve(name, is_package, node)
                targets = [f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules
                           else target for alias in node.names]
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


@pytest.mark.parametrize(("module", "forbidden"), [
    ("sendgrid_ipam.resources._base", "sendgrid_ipam.client"),
    ("sendgrid_ipam.reconcile", "sendgrid_ipam.resources"),
    ("sendgrid_ipam.engine.core", "sendgrid_ipam.client"),
    ("sendgrid_ipam.bulk", "sendgrid_ipam.resources"),
])
def test_lower_layers_never_import_upper_ones(module: str, forbidden: str) -> None:
    graph = import_graph()
    reach, stack = set(), [module]
    while stack:
        for target in graph[stack.pop()] - reach:
            reach.add(target)
            stack.append(target)
    assert not {m for m in reach if m == forbidden or m.startswith(forbidden + ".")}


def test_the_check_finds_a_cycle_when_resources_import_the_client_again(tmp_path: Path) -> None:
    copy = tmp_path / "sendgrid_ipam"
    for path in PACKAGE.rglob("*.py"):
        target = copy / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    base = copy / "resources" / "_base.py"
    base.write_text(base.read_text() + "\nfrom typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from ..client import SendGridIPAM\n")
    cycle = find_cycle(import_graph(copy))
    assert cycle is not None
    assert "sendgrid_ipam.client" in cycle
