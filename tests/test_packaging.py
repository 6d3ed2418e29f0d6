"""The project as others install it: a wheel holding every SQL file of the model and none of the
checkout's other folders, installed (not editable) and run from outside the checkout, loads the
bundled sample into the same tables as the checkout does; its console commands are declared."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.helpers import snapshot

SAMPLE = PROJECT_ROOT / "data" / "sample"
PIP = [sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from the checkout as `pip wheel .` builds it."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            *PIP,
            "wheel",
            "--no-deps",
            "--wheel-dir",
            str(out),
            str(PROJECT_ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("sparkify_etl-*.whl")
    return built


def test_the_wheel_holds_every_sql_file_and_no_other_top_level_folder(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    sql_files = {
        p.relative_to(PROJECT_ROOT).as_posix() for p in (PROJECT_ROOT / "sql").rglob("*.sql")
    }
    assert sql_files, "the model has SQL files"
    assert sql_files <= names, sorted(sql_files - names)
    tops = {name.split("/", 1)[0] for name in names if "/" in name}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"flows", "sql", "tasks"}


def test_the_installed_wheel_loads_the_sample_as_the_checkout_does(
    wheel: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [*PIP, "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    source = shutil.copytree(SAMPLE, elsewhere / "sample")
    env = {**cli_env, "PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import flows, sql, tasks; print(flows.__file__, sql.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert where.stdout.split() == [
        str(target / "flows/__init__.py"),
        str(target / "sql/__init__.py"),
    ]

    installed = elsewhere / "installed.duckdb"
    done = subprocess.run(
        [sys.executable, "-m", "flows.etl", "--source", str(source), "--warehouse", str(installed)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    from flows.etl import etl

    checkout = tmp_path / "checkout.duckdb"
    etl(str(SAMPLE), str(checkout))
    assert snapshot(installed) == snapshot(checkout)


def test_every_flow_command_line_is_a_console_command() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    scripts = project["scripts"]
    assert scripts["sparkify-etl"] == "flows.etl:main"
    with_main = sorted(
        f"flows.{p.stem}:main"
        for p in (PROJECT_ROOT / "flows").glob("*.py")
        if "\ndef main(" in p.read_text()
    )
    assert sorted(scripts.values()) == with_main


def test_make_installs_the_locked_versions_of_every_dependency() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    lock = (PROJECT_ROOT / "requirements.lock").read_text()
    pinned = dict(
        line.split("==", 1) for line in lock.splitlines() if "==" in line and line[0].isalpha()
    )
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    names = {re.split(r"[<>=\[ ]", spec, maxsplit=1)[0].lower() for spec in wanted}
    assert sorted(names - set(pinned)) == []
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "pip install --quiet -r requirements.lock" in makefile
    assert "$(STAMP): pyproject.toml requirements.lock" in makefile
