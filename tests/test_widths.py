"""The text widths of a source against the table model (flows/widths.py), and what a value
wider than its column gets: a reject with its reason, the other records loaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flows.etl import etl
from flows.widths import main, widths
from sql import model
from tests.helpers import query

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


def test_the_sample_fits_the_model_with_its_widths_measured(prefect_server) -> None:
    rows = {(r["table"], r["field"]): r for r in widths(str(SAMPLE))}
    agent = rows[("staging_events", "userAgent")]
    assert (agent["declared bytes"], agent["widest bytes"], agent["values wider"]) == (
        model.USER_AGENT,
        139,
        0,
    )
    assert rows[("staging_songs", "title")]["declared bytes"] == model.NAME
    assert all(r["widest bytes"] <= r["declared bytes"] for r in rows.values())
    # The file name staging adds to song records is no field of the data.
    assert ("staging_songs", model.SOURCE_FILE_FIELD) not in rows


@pytest.fixture
def wide_agent(tmp_path: Path) -> tuple[Path, Path]:
    """The sample with one event's user agent a byte wider than the model allows."""
    root = tmp_path / "source"
    shutil.copytree(SAMPLE, root)
    day = root / "log_data" / "2018" / "11" / "2018-11-05-events.json"
    lines = day.read_text(encoding="utf-8").splitlines()
    event = json.loads(lines[3])
    event["userAgent"] = "é" * (model.USER_AGENT // 2) + "x"  # 1,025 bytes, 513 characters
    lines[3] = json.dumps(event, ensure_ascii=False)
    day.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root, day


def test_a_value_wider_than_its_column_is_reported_and_rejected(
    prefect_server, wide_agent: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    root, day = wide_agent
    assert main(["--source", str(root)]) == 1
    printed = capsys.readouterr().out
    line = next(line for line in printed.splitlines() if "userAgent" in line)
    assert line.split()[2:5] == ["1,024", "1,025", "1"]
    assert str(day) in line

    db = tmp_path / "wh.duckdb"
    summary = etl(str(root), str(db))
    assert summary["staged"]["events"]["rejects"] == 1
    assert query(db, "select source_file, line_number, reason from load_rejects") == [
        (str(day), 4, f"value too long for userAgent: more than {model.USER_AGENT} bytes")
    ]
