"""The text widths of a source against the table model (flows/widths.py), and what a value
wider than its column gets: descriptive text is cut (and counted), other text is a reject with
its reason, the other records loaded."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from flows.etl import etl
from flows.widths import main, widths
from sql import model
from tasks.run.cut_text import cut_columns
from tasks.run.transform import transform_files
from tests.helpers import query

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


def test_the_sample_fits_the_model_with_its_widths_measured(prefect_server) -> None:
    rows = {(r["table"], r["field"]): r for r in widths(str(SAMPLE))}
    agent = rows[("staging_events", "userAgent")]
    assert (agent["kept"], agent["widest"], agent["unit"], agent["values wider"]) == (
        model.USER_AGENT_CHARS,
        139,
        "characters",
        0,
    )
    title = rows[("staging_songs", "title")]
    assert (title["kept"], title["unit"], title["wider values are"]) == (
        model.NAME,
        "bytes",
        "rejected",
    )
    assert all(r["widest"] <= r["kept"] for r in rows.values())
    # The file name staging adds to song records is no field of the data.
    assert ("staging_songs", model.SOURCE_FILE_FIELD) not in rows


def rewrite(path: Path, line: int, **changes: object) -> None:
    """Change fields of one JSON line of a file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[line] = json.dumps({**json.loads(lines[line]), **changes}, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def wide_source(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The sample with one event's user agent a character wider than the model keeps, and one
    song's title a byte wider than its column."""
    root = tmp_path / "source"
    shutil.copytree(SAMPLE, root)
    day = root / "log_data" / "2018" / "11" / "2018-11-05-events.json"
    rewrite(day, 0, userAgent="é" * model.USER_AGENT_CHARS + "x")  # a NextSong event
    song = sorted((root / "song_data").rglob("*.json"))[0]
    rewrite(song, 0, title="é" * (model.NAME // 2) + "x")  # 513 bytes, 257 characters
    return root, day, song


def test_a_wider_value_is_cut_or_rejected_as_reported(
    prefect_server, wide_source: tuple[Path, Path, Path], tmp_path: Path, capsys
) -> None:
    root, day, song = wide_source
    assert main(["--source", str(root)]) == 1  # the title would be a reject
    printed = capsys.readouterr().out.splitlines()
    agent = next(line for line in printed if "userAgent" in line).split()
    assert agent[2:8] == ["256", "257", "characters", "1", "cut", str(day)]
    title = next(line for line in printed if " title " in line).split()
    assert title[2:8] == ["512", "513", "bytes", "1", "rejected", str(song)]

    db = tmp_path / "wh.duckdb"
    summary = etl(str(root), str(db))
    assert summary["cut_values"] == {"userAgent": 1}
    assert (summary["staged"]["events"]["rejects"], summary["staged"]["songs"]["rejects"]) == (0, 1)
    assert query(db, "select source_file, line_number, reason from load_rejects") == [
        (str(song), 1, f"value too long for title: more than {model.NAME} bytes")
    ]
    cut = "é" * model.USER_AGENT_CHARS
    assert query(db, "select count(*) from songplays where user_agent = ?", [cut]) == [(1,)]


def test_the_transforms_cut_each_descriptive_field_as_the_model_declares() -> None:
    text = "\n".join(path.read_text() for path in transform_files())
    cuts = re.finditer(
        r"cast\((?:rtrim\()?left\((\w+), (\d+)\)(?:, ' '\))? as varchar\((\d+)\)\)", text
    )
    found = {(name, int(chars), int(width)) for name, chars, width in map(re.Match.groups, cuts)}
    declared = {
        (c.name, c.info["cut_to"], model.UTF8_MAX_BYTES * c.info["cut_to"]) for c in cut_columns()
    }
    assert found == declared
