"""Each odd byte or odd JSON gets one decision on every path (tasks/warehouse/json_text.py):
event files staged whole and line by line, and song files, reject or load the same records for
a NUL, a byte order mark, NaN and Infinity, a trailing comma, deep nesting and a key given twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sql import model
from tasks.warehouse.json_text import BOM, MALFORMED, MAX_DEPTH
from tests.test_staging import SONG, event
from tests.test_staging_scale import stage, write
from tests.test_staging_whole import both_ways


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def event_line(**changes: object) -> bytes:
    return event(**changes).encode()


def with_extra(line: str, extra: str) -> str:
    """A JSON object's line with a member "extra" of this raw JSON text first."""
    return '{"extra": ' + extra + ", " + line[1:]


# Each case: its odd line (first in its file, so a NUL is in the file's head and a BOM at its
# start) and whether it loads. The record itself is a level: a member nested n deep is n + 1.
EVENT_CASES = {
    "nul_in_text": (event_line(itemInSession=7, song="a_b").replace(b"a_b", b"a\x00b"), False),
    "bom": (BOM + event_line(itemInSession=7), False),
    "nan": (event_line(itemInSession=7, length=float("nan")), False),
    "infinity": (event_line(itemInSession=7, length=float("inf")), False),
    "minus_infinity": (event_line(itemInSession=7, length=float("-inf")), False),
    "trailing_comma": (event_line(itemInSession=7)[:-1] + b",}", False),
    "trailing_comma_in_list": (with_extra(event(itemInSession=7), "[1, 2 ,]").encode(), False),
    "too_deep": (with_extra(event(itemInSession=7), nested(MAX_DEPTH)).encode(), False),
    "deep_enough": (with_extra(event(itemInSession=7), nested(MAX_DEPTH - 1)).encode(), True),
    "words_in_text": (event_line(itemInSession=7, song="NaN, Infinity ,} ,]"), True),
    "duplicate_key": (
        with_extra(event(itemInSession=7, userId="52"), "0")
        .replace('"extra": 0', '"userId": "51"')
        .encode(),
        True,
    ),
}


def test_each_odd_event_line_gets_one_decision_whole_and_by_line(tmp_path: Path) -> None:
    files = []
    for n, (odd, _) in enumerate(EVENT_CASES.values()):
        good = [
            event_line(sessionId=100 + n, itemInSession=i, ts=1541105830796 + i) for i in (0, 1)
        ]
        files.append(write(tmp_path / "src" / f"{n:02}-events.json", b"\n".join([odd, *good])))
    staged = both_ways(tmp_path, files)  # the same rows and rejects both ways
    rejected = {name: (number, reason) for name, number, reason, _ in staged["rejects"]}
    columns = list(model.staging_events.c.keys())
    items = {
        (row[columns.index("session_id")], row[columns.index("item_in_session")]): row
        for row in staged["rows"]
    }
    for n, (case, (_, loads)) in enumerate(EVENT_CASES.items()):
        name = f"{n:02}-events.json"
        # The file's good lines load whatever its odd line is: no whole-file reject.
        assert all((100 + n, i) in items for i in (0, 1)), case
        if loads:
            assert name not in rejected, case
        else:
            number, reason = rejected[name]
            assert number == 1, case
            assert reason.startswith(MALFORMED), case
    odd_rows = [row for row in staged["rows"] if row[columns.index("item_in_session")] == 7]
    assert len(odd_rows) == sum(loads for _, loads in EVENT_CASES.values())
    # A key given twice: the first value loads.
    users = {row[columns.index("user_id")] for row in odd_rows}
    assert "51" in users
    assert "52" not in users


SONG_CASES = {
    "nul_in_text": (
        json.dumps({**SONG, "title": "a_b"}).encode().replace(b"a_b", b"a\x00b"),
        False,
    ),
    "bom": (BOM + json.dumps(SONG).encode(), False),
    "nan": (json.dumps({**SONG, "duration": float("nan")}).encode(), False),
    "infinity": (json.dumps({**SONG, "duration": float("inf")}).encode(), False),
    "trailing_comma": (json.dumps(SONG).encode()[:-1] + b", }", False),
    "too_deep": (with_extra(json.dumps(SONG), nested(MAX_DEPTH)).encode(), False),
    "deep_enough": (with_extra(json.dumps(SONG), nested(MAX_DEPTH - 1)).encode(), True),
    "words_in_text": (json.dumps({**SONG, "title": "NaN, Infinity ,} ,]"}).encode(), True),
    "duplicate_key": (
        with_extra(json.dumps({**SONG, "title": "Last"}), '"First"')
        .replace('"extra"', '"title"')
        .encode(),
        True,
    ),
}


@pytest.mark.parametrize("case", list(SONG_CASES))
def test_each_odd_song_file_gets_the_decision_an_event_line_gets(tmp_path: Path, case: str) -> None:
    content, loads = SONG_CASES[case]
    song = write(tmp_path / "src" / "song_data" / f"TR{case}.json", content)
    staged = stage(tmp_path, [], [song])
    if loads:
        assert staged["rejects"] == []
        assert len(staged["songs"]) == 1
    else:
        assert staged["songs"] == []
        [(name, number, reason, _)] = staged["rejects"]
        assert (name, number) == (song.name, 1)
        assert reason.startswith(MALFORMED)
    if case == "duplicate_key":
        title = list(model.staging_songs.c.keys()).index("title")
        assert staged["songs"][0][title] == "First"
    assert EVENT_CASES[case][1] == loads  # the decision an event line gets
