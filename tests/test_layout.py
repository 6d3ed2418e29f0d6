"""The layout's rules, checked on the source: no module of flows/, tasks/ or sql/ over 400 lines
(the generator's word lists aside), flows never import flows, and no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import PROJECT_ROOT

PACKAGES = ("flows", "tasks", "sql")
MAX_LINES = 400


def project_modules() -> dict[str, Path]:
    """Every module of the checked packages, by dotted name."""
    modules = {}
    for package in PACKAGES:
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules a module imports, wherever in it (a function's import counts)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found |= {name for name in names if name in modules}
    return found


def test_no_module_is_over_400_lines() -> None:
    long = {
        name: lines
        for name, path in project_modules().items()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_flows_never_import_flows() -> None:
    modules = project_modules()
    flows = {name for name in modules if name.startswith("flows.")}
    assert {name: imports_of(modules[name], modules) & flows for name in flows} == {
        name: set() for name in flows
    }


def test_there_is_no_import_cycle() -> None:
    modules = project_modules()
    graph = {name: imports_of(path, modules) - {name} for name, path in modules.items()}
    cycles = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for dependency in sorted(graph[name]):
            if state.get(dependency) == "open":
                cycles.append([*path, name, dependency])
            elif dependency not in state:
                visit(dependency, [*path, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert cycles == []
