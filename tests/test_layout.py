"""The layout's rules, checked on the source: no module of flows/, tasks/ or sql/ over 400 lines,
flows import no flow but the ETL (run as a subflow), no import cycle between modules, no two
packages of tasks/ importing each other, tasks/common importing none of them, and each
warehouse's driver in its own package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

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


# The flows that run the ETL as a subflow (Prefect's way of reusing a flow).
RUN_THE_ETL = {"flows.ephemeral", "flows.redshift_smoke"}


def test_flows_import_no_flow_but_the_etl_which_two_run_as_a_subflow() -> None:
    modules = project_modules()
    flows = {name for name in modules if name.startswith("flows.")}
    assert {name: imports_of(modules[name], modules) & flows for name in flows} == {
        name: {"flows.etl"} if name in RUN_THE_ETL else set() for name in flows
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


# tasks/'s packages; a warehouse backend's package counts as part of tasks.warehouse here, and
# the backends are held apart by the test after.
TOP_PACKAGES = ("tasks.common", "tasks.source", "tasks.warehouse", "tasks.run", "tasks.cluster")
BACKENDS = ("tasks.warehouse.duckdb", "tasks.warehouse.redshift", "tasks.warehouse.redshift_data")
# The Data API backend is the Redshift backend over another driver: it builds on it, never the
# reverse.
BUILDS_ON = {"tasks.warehouse.redshift_data": {"tasks.warehouse.redshift"}}


def package_of(module: str, packages: tuple[str, ...]) -> str | None:
    """The package (of those given) a module belongs to, or None."""
    found = [p for p in packages if module == p or module.startswith(p + ".")]
    return max(found, key=len) if found else None


def package_imports(packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Which of the packages each package imports, from its modules' imports."""
    modules = project_modules()
    graph: dict[str, set[str]] = {p: set() for p in packages}
    for name, path in modules.items():
        source = package_of(name, packages)
        if source is None:
            continue
        for imported in imports_of(path, modules):
            target = package_of(imported, packages)
            if target is not None and target != source:
                graph[source].add(target)
    return graph


def test_no_two_packages_import_each_other_and_common_imports_none() -> None:
    graph = package_imports(TOP_PACKAGES)
    assert graph["tasks.common"] == set()
    both_ways = sorted(
        (a, b) for a in graph for b in graph[a] if a in graph.get(b, set()) and a < b
    )
    assert both_ways == []
    # No longer circle either: a package never reaches itself through others.
    for start in graph:
        reached, frontier = set(), set(graph[start])
        while frontier:
            package = frontier.pop()
            if package not in reached:
                reached.add(package)
                frontier |= graph[package]
        assert start not in reached, (start, graph)


def test_a_warehouse_backend_never_imports_another() -> None:
    graph = package_imports(BACKENDS)
    assert graph == {backend: BUILDS_ON.get(backend, set()) for backend in BACKENDS}


def third_party_imports(path: Path) -> set[str]:
    """The top-level names of every module a file imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
    return found


@pytest.mark.parametrize(
    ("drivers", "home"),
    [
        ({"duckdb", "duckdb_engine"}, "tasks.warehouse.duckdb"),
        ({"redshift_connector"}, "tasks.warehouse.redshift"),
        # Redshift's SQL dialect, under both Redshift backends' drivers.
        ({"sqlalchemy_redshift"}, ("tasks.warehouse.redshift", "tasks.warehouse.redshift_data")),
    ],
)
def test_each_warehouse_driver_is_imported_in_its_package_only(
    drivers: set[str], home: str | tuple[str, ...]
) -> None:
    homes = (home,) if isinstance(home, str) else home
    outside = sorted(
        name
        for name, path in project_modules().items()
        if third_party_imports(path) & drivers and package_of(name, homes) is None
    )
    assert outside == []
