"""Event files staged whole by DuckDB's read_json give the rows and rejects that staging them line
by line gives: every spelling of a good value types alike, and a file with any line that does
not load (whatever its bytes) is staged again line by line, so each bad line keeps its number
and reason and no line is lost or gained."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from sql import model
from tasks.warehouse.duckdb import lines
from tasks.warehouse.duckdb import staging as duckdb_staging
from tests.test_staging import GOOD_EVENT, event
from tests.test_staging_scale import day_lines, stage, text, write

# Good events with every spelling of their values that loads: the typed rows must be the same.
ODD_GOOD = [
    event(ts="1541105830796", sessionId="5", itemInSession="1", status="200"),
    event(itemInSession=2, ts=1541105830797, sessionId="007", registration="1540919166796"),
    event(itemInSession=3, length=-0.0, registration=0, status=404),
    event(itemInSession=4, length="218.93179", registration=1.7976931348623157e308),
    event(itemInSession=5, length=5e-324, artist='\u00e9\u00e8 \U0001f600 \t\n"\\/', song=""),
    event(itemInSession=6, artist=[1, {"a": 2}], song={"x": [True, None]}, location=123.5),
    event(itemInSession=7, artist=True, song=None, level="paid   ", gender=None, lastName=...),
    event(itemInSession=8, userId=26, page="Home", firstName="x" * 128),
    event(itemInSession=9, userId="", page="Home", auth="Logged Out"),
    '  {"ts": 1541105830796, "ts": 1, ' + event(itemInSession=10)[1:] + "  ",
    json.dumps({"extra": {"deep": [[[]]]}, **GOOD_EVENT, "itemInSession": 11}, indent=None),
    json.dumps({**GOOD_EVENT, "itemInSession": 12}, separators=(",", ":")).replace(":", " :\t"),
    event(itemInSession=13)[:-1] + " \t}",
    event(itemInSession=14, length="1E2", status="0200"),
    json.dumps({**GOOD_EVENT, "itemInSession": 15, "artist": "\ud83d\ude00"}, ensure_ascii=True),
    "",
    "\t \r",
    event(itemInSession=16, ts=253402300799999),
]

# Lines that do not load, or whose bytes a reader might split, skip or read differently: each
# sits in a file of its own between good lines.
ODD_BAD = [
    *[bytes([b]) for b in range(256) if b != 0x0A],
    b'{"ts": 1}{"ts": 2}',
    b"{} x",
    event(itemInSession=1)[:-1].encode() + b"} trailing",
    b"\xef\xbb\xbf" + event(itemInSession=1).encode(),
    event(itemInSession=1)[:-1].encode() + b", }",
    event(itemInSession=1).encode() + b"\r" + event(itemInSession=2).encode(),
    event(itemInSession=1).encode() + b"\r\r",
    event(itemInSession=1).encode() + b"\x00",
    event(itemInSession=1, song="a\x00b").encode(),
    event(itemInSession=1, song="a\ud800b").encode("utf-8", "surrogatepass"),
    event(itemInSession=1).replace('"Hopp', '"\\ud800Hopp').encode(),
    event(itemInSession=1, song="\xe9").encode("latin-1"),
    event(itemInSession=1).encode()[:-1] + b'"\xff": 1}',
    b"{}",
    b'{"other": 1}',
    b"[]",
    b"null",
    b"12",
    b'"text"',
    b"/* note */ " + event(itemInSession=1).encode(),
    event(itemInSession=1).encode() + b" // note",
    event(itemInSession=1, ts=float("nan")).encode(),
    event(itemInSession=1).replace("218.93179", "NaN").encode(),
    event(itemInSession=1).replace("218.93179", "Infinity").encode(),
    event(itemInSession=1).replace("218.93179", "1e400").encode(),
    event(itemInSession=1, ts=99999999999999999).encode(),
    event(itemInSession=1, ts=1.5).encode(),
    event(itemInSession=1, sessionId=" 5").encode(),
    event(itemInSession=1, sessionId=2**63).encode(),
    event(itemInSession=1, userId="abc").encode(),
    event(itemInSession=1, userAgent="x" * 2000).encode(),
    event(itemInSession=1, ts=...).encode(),
    event(itemInSession=1).upper().encode(),
    b"{" * 2000 + b"}" * 2000,
    b'{"ts":',
    *[
        spaced
        for c in (b" ", b"\t", b"\r", b"\x0b", b"\x0c", b"\xc2\x85", b"\xc2\xa0")
        for spaced in (
            c + event(itemInSession=1).encode(),
            event(itemInSession=1).encode() + c,
            c + event(itemInSession=1).encode() + c,
            event(itemInSession=1).replace(", ", "," + c.decode(), 1).encode(),
            c * 2,
        )
    ],
    *[event(itemInSession=1).encode() + tail for tail in (b"}", b"]", b",", b"{", b"x", b" 1")],
]


def good_lines(session: int) -> list[bytes]:
    """Two good events of a session: a file's own lines around its odd one."""
    return [
        event(sessionId=session, itemInSession=n, ts=1541105000000 + n).encode() for n in (0, 1)
    ]


def both_ways(tmp_path: Path, files: list[Path]) -> dict:
    """Staged whole (where read_json can), and line by line: the same rows and rejects."""
    whole = stage(tmp_path / "whole", files)
    by_line = stage(tmp_path / "lines", files, whole_files=False)
    # Rows of equal sort keys (one event in many files) come in any order: compared as sets.
    assert sorted(map(repr, whole["rows"])) == sorted(map(repr, by_line["rows"]))
    assert whole["rejects"] == by_line["rejects"]
    return whole


def test_good_lines_of_every_spelling_stage_whole_as_line_by_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = write(tmp_path / "src" / "2018-11-01-events.json", "\n".join(ODD_GOOD).encode())
    read_by_line = []
    monkeypatch.setattr(
        duckdb_staging, "line_batches", lambda files, n: read_by_line.extend(files) or iter(())
    )
    whole = stage(tmp_path / "whole", [day])
    assert read_by_line == []  # all of it staged whole
    monkeypatch.undo()
    by_line = stage(tmp_path / "lines", [day], whole_files=False)
    assert whole["rows"] == by_line["rows"]
    assert whole["rejects"] == by_line["rejects"] == []
    assert len(whole["rows"]) == len(ODD_GOOD) - 2  # the two blank lines hold no record


def test_a_file_with_any_odd_line_stages_as_line_by_line(tmp_path: Path) -> None:
    files = []
    for n, odd in enumerate(ODD_BAD):
        body = b"\n".join([good_lines(100 + n)[0], odd, good_lines(100 + n)[1]]) + b"\n"
        files.append(write(tmp_path / "src" / f"{n:03}-events.json", body))
    staged = both_ways(tmp_path, files)
    # Each file loads its two good lines but where its odd line makes it binary, and each odd
    # line is a reject at line 2, a record (session 5), or blank.
    session = list(model.staging_events.c.keys()).index("session_id")
    sessions = Counter(row[session] for row in staged["rows"])
    binary = {name for name, _, reason, _ in staged["rejects"] if reason.startswith("binary")}
    for n in range(len(ODD_BAD)):
        assert sessions[100 + n] == (0 if f"{n:03}-events.json" in binary else 2)
    rejected = {name for name, number, _, _ in staged["rejects"] if number == 2}
    blank = [odd for odd in ODD_BAD if re.fullmatch(rb"[ \t\r\f]*", odd)]
    assert len(rejected) + sessions[5] + len(blank) + len(binary) == len(ODD_BAD)
    assert not rejected & binary


def test_line_lengths_at_the_limit_stage_whole_or_not_as_line_by_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lines, "MAX_LINE_BYTES", 1200)
    base = event(itemInSession=1, extra="")
    pad = 1200 - len(base.encode())
    files = []
    for n, (extra, end) in enumerate(
        [
            (pad, b"\n"),
            (pad + 1, b"\n"),
            (pad - 1, b"\r\n"),
            (pad, b"\r\n"),
            (pad, b""),
            (pad + 1, b""),
        ]
    ):
        line = event(itemInSession=1, extra="x" * extra).encode()
        body = b"\n".join(good_lines(n)) + b"\n" + line + end
        files.append(write(tmp_path / "src" / f"{n}-events.json", body))
    staged = both_ways(tmp_path, files)
    too_long = [(name, number) for name, number, reason, _ in staged["rejects"]]
    assert too_long == [("1-events.json", 3), ("3-events.json", 3), ("5-events.json", 3)]


def test_a_path_with_glob_characters_is_staged_line_by_line(tmp_path: Path) -> None:
    # read_json would take the path for a pattern: such a file is read line by line.
    day = write(tmp_path / "src[1]*" / "2018-11-01-events.json", text(day_lines(1, 3)))
    assert not lines.readable_whole(lines.FileToRead(0, str(day), str(day)))
    plain = write(tmp_path / "src" / "2018-11-02-events.json", text(day_lines(2, 3)))
    assert lines.readable_whole(lines.FileToRead(0, str(plain), str(plain)))
    staged = both_ways(tmp_path, [day, plain])
    assert len(staged["rows"]) == 6
    assert staged["rejects"] == []
