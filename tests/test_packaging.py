"""The project as others install it: a wheel holding every SQL file of the model and none of the
checkout's other folders; installed by the image's own steps in a fresh virtualenv and run from
outside the checkout, it loads the bundled sample into the same tables as the checkout does;
every flow's command line is a console command; make installs the locked versions."""

from __future__ import annotations

import os
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
BIN = Path(sys.executable).parent  # the dev tools: uv is pinned to the image's version


def uv_env(**extra: str) -> dict[str, str]:
    """The environment of uv run as the image runs it, with the dev tools' uv on PATH."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV" and not k.startswith("UV_")}
    return {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", **extra}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of what the image copies, as its first stage
    builds it."""
    (build_step, _) = image_steps()
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, src / name)
    for name in ("flows", "sql", "tasks"):
        shutil.copytree(
            PROJECT_ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        build_step.replace("/dist", str(out)),
        shell=True,
        cwd=src,
        env=uv_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
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


def image_steps() -> list[str]:
    """The RUN steps of deployments/Dockerfile, as shell commands."""
    dockerfile = (PROJECT_ROOT / "deployments" / "Dockerfile").read_text()
    steps = [
        line.removeprefix("RUN ") for line in dockerfile.splitlines() if line.startswith("RUN ")
    ]
    assert len(steps) == 2, steps  # build the wheel, install it under the lock
    return steps


def test_the_image_copies_the_uv_the_dev_tools_pin() -> None:
    dockerfile = (PROJECT_ROOT / "deployments" / "Dockerfile").read_text()
    (image,) = re.findall(r"^FROM ghcr.io/astral-sh/uv:(\S+)", dockerfile, re.MULTILINE)
    version = subprocess.run(
        [BIN / "uv", "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert image == version


def test_the_image_s_install_steps_give_a_package_that_loads_as_the_checkout_does(
    wheel: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The image's install step, run as it is into a fresh virtualenv outside the checkout (its
    /dist and /tmp/requirements.lock here under tmp_path), gives console commands that load the
    bundled sample into the same tables as the checkout does."""
    venv = tmp_path / "venv"
    uv_venv = [BIN / "uv", "venv", "--quiet", "--python", sys.executable, str(venv)]
    subprocess.run(uv_venv, env=uv_env(), check=True, timeout=300)  # no pip: uv installs
    shutil.copy(PROJECT_ROOT / "requirements.lock", tmp_path / "requirements.lock")
    (tmp_path / "dist").mkdir()
    shutil.copy(wheel, tmp_path / "dist")
    (_, install_step) = image_steps()
    command = install_step.replace("/tmp/requirements.lock", str(tmp_path / "requirements.lock"))
    done = subprocess.run(
        command.replace("/dist", str(tmp_path / "dist")),
        shell=True,
        cwd=tmp_path,
        env=uv_env(VIRTUAL_ENV=str(venv)),  # the image's UV_SYSTEM_PYTHON, for this virtualenv
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, command + "\n" + done.stderr[-3000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    source = shutil.copytree(SAMPLE, elsewhere / "sample")
    installed = elsewhere / "installed.duckdb"
    env = {k: v for k, v in cli_env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import flows, sql; print(flows.__file__, sql.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert all(path.startswith(str(venv)) for path in where.stdout.split()), where.stdout
    done = subprocess.run(
        [venv / "bin" / "sparkify-etl", "--source", str(source), "--warehouse", str(installed)],
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
