"""The documentation: the site builds with --strict; its reference names every parameter of
every flow and every field of every warehouse block, taken from the code; README stays a short
front door whose links lead to pages that exist."""

from __future__ import annotations

import html
import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prefect import Flow
from prefect.blocks.core import Block

import flows
from tests.conftest import PROJECT_ROOT

MKDOCS = Path(sys.executable).parent / "mkdocs"
DOCS = PROJECT_ROOT / "docs"
README = PROJECT_ROOT / "README.md"
BLOCK_MODULES = (
    "tasks.warehouse.duckdb.warehouse",
    "tasks.warehouse.redshift.warehouse",
    "tasks.warehouse.redshift_data.warehouse",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as `make test` builds it, into a folder of its own."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [str(MKDOCS), "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def every_flow() -> list[tuple[str, Flow]]:
    """Each @flow function of flows/*.py, by its dotted path."""
    found = []
    for info in pkgutil.iter_modules(flows.__path__):
        module = importlib.import_module(f"flows.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, Flow) and obj.fn.__module__ == module.__name__:
                found.append((f"{module.__name__}.{name}", obj))
    return sorted(found, key=lambda pair: pair[0])


def every_block() -> list[type[Block]]:
    """Each warehouse block class the project defines."""
    found = []
    for module_name in BLOCK_MODULES:
        module = importlib.import_module(module_name)
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Block) and obj.__module__ == module_name:
                found.append(obj)
    return found


def section(page: str, path: str, tag_as: str = " ") -> str:
    """The text of the reference's entry for path, from its heading to the next entry's, each
    HTML tag written as tag_as."""
    start = page.index(f'id="{path}"')
    end = page.find('class="doc doc-heading"', page.index(">", start))
    body = page[start : end if end > 0 else len(page)]
    return html.unescape(re.sub(r"<[^>]+>", tag_as, body))


def test_the_flows_and_blocks_are_found() -> None:
    assert "flows.etl.etl" in dict(every_flow())
    assert {b.__name__ for b in every_block()} >= {"DuckDBWarehouse", "RedshiftWarehouse"}


def test_the_reference_names_every_parameter_of_every_flow(site: Path) -> None:
    page = (site / "reference" / "flows" / "index.html").read_text()
    missing = {}
    for path, flow in every_flow():
        if f'id="{path}"' not in page:
            missing[path] = ["the flow itself"]
            continue
        words = set(re.findall(r"\w+", section(page, path)))
        absent = [p for p in inspect.signature(flow.fn).parameters if p not in words]
        if absent:
            missing[path] = absent
    assert not missing, missing


def test_the_reference_describes_every_field_of_every_block(site: Path) -> None:
    page = (site / "reference" / "blocks" / "index.html").read_text()
    missing = {}
    for block in every_block():
        path = f"{block.__module__}.{block.__qualname__}"
        absent = [f for f in block.model_fields if f'id="{path}.{f}"' not in page]
        if absent:
            missing[path] = absent
    assert not missing, missing
    for block in every_block():
        path = f"{block.__module__}.{block.__qualname__}"
        for name, field in block.model_fields.items():
            text = " ".join(section(page, f"{path}.{name}", tag_as="").split())
            description = " ".join((field.description or "").replace("`", "").split())
            assert description, (path, name, "has no description")
            assert description in text, (path, name)


def test_readme_is_a_front_door_of_at_most_150_lines() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 150, len(lines)
    assert "make test" in README.read_text()


def test_readme_links_lead_to_pages_that_exist(site: Path) -> None:
    targets = re.findall(r"\]\(([^)\s]+)\)", README.read_text())
    local = [t for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    assert any(t.startswith("docs/") for t in local), "README links into the docs"
    broken = [t for t in local if not (PROJECT_ROOT / t.split("#", 1)[0]).exists()]
    assert not broken, broken
    for target in local:
        path, _, anchor = target.partition("#")
        if path.startswith("docs/") and anchor:
            page_dir = Path(path).relative_to("docs").with_suffix("")
            if page_dir.name == "index":
                page_dir = page_dir.parent
            page = site / page_dir / "index.html"
            assert f'id="{anchor}"' in page.read_text(), target
