"""What a record's line must be to load: JSON text as RFC 8259 has it, one decision on every path
(event files read whole by DuckDB's read_json or a batch of lines at a time, song files parsed
by orjson), and the one the Redshift stand-in's COPY makes.

- A UTF-8 byte order mark before a file's first record: that line is malformed JSON (JSON text
  has no BOM; the rest of the file loads).
- NaN, Infinity, -Infinity and a trailing comma: not JSON, the record is malformed.
- A record nested deeper than MAX_DEPTH levels: malformed.
- A NUL byte in a line: that line is malformed (a file is binary only when its head is not text
  at all: see records.binary_reason).
- A key given twice: the first value is the one loaded (as DuckDB reads it).

DuckDB's reader takes NaN, Infinity, trailing commas and any depth, so a line where one of them
may be (`suspect`: SUSPECT_JSON matches it, or it is long enough to nest that deep) is read
again by Python's strict reader (`json_fault`); such lines are rare, and the check of all the
others costs one regular-expression scan.
"""

from __future__ import annotations

import array
import json
import mmap
import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

MALFORMED = "malformed JSON: not a valid JSON object"
BOM = b"\xef\xbb\xbf"
# Where a line may hold what DuckDB's reader takes and JSON does not (a string may match too:
# json_fault decides).
SUSPECT_JSON = r"NaN|Infinity|,[ \t\r]*[\]}]"
MAX_DEPTH = 512
# A line nested deeper than MAX_DEPTH opens and closes more than MAX_DEPTH containers.
LONG_LINE = 2 * MAX_DEPTH
_SUSPECT = re.compile(SUSPECT_JSON.encode())
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def suspect(line: bytes) -> bool:
    """Whether DuckDB's reader may take a line that is not JSON text."""
    return len(line) > LONG_LINE or _SUSPECT.search(line) is not None


def suspect_lines(lines: pa.Array) -> pa.Array:
    """`suspect` of each line of an Arrow array of texts, vectorised."""
    return pc.or_(
        pc.match_substring_regex(lines, SUSPECT_JSON),
        pc.greater(pc.binary_length(lines), LONG_LINE),
    )


def suspect_file(content: mmap.mmap | bytes) -> bool:
    """Whether a file's content has a line that `suspect` would flag, or a byte order mark."""
    if content[: len(BOM)] == BOM:
        return True
    start = 0
    while (end := content.find(b"\n", start)) >= 0:
        if end - start > LONG_LINE:
            return True
        start = end + 1
    if len(content) - start > LONG_LINE:
        return True
    # The whole content as one Arrow value (no copy): RE2 scans it in one pass.
    offsets = pa.py_buffer(array.array("q", [0, len(content)]))
    whole = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), 1, [None, offsets, pa.py_buffer(content)]
    )
    return bool(pc.match_substring_regex(whole, SUSPECT_JSON)[0].as_py())


def _refuse(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _deeper_than(text: str, depth: int) -> bool:
    """Whether the text nests containers deeper than `depth` (strings skipped)."""
    level = 0
    for token in _TOKENS.finditer(text):
        mark = token.group()
        if mark in "[{":
            level += 1
            if level > depth:
                return True
        elif mark in "]}":
            level -= 1
    return False


def json_fault(line: bytes | str) -> str | None:
    """MALFORMED when a (non-blank) line is not JSON text as RFC 8259 has it or nests deeper
    than MAX_DEPTH levels; None otherwise."""
    text = line.decode("utf-8", "surrogateescape") if isinstance(line, bytes) else line
    if not text.strip():
        return None
    if _deeper_than(text, MAX_DEPTH):
        return f"{MALFORMED} (nested deeper than {MAX_DEPTH} levels)"
    try:
        json.loads(text, parse_constant=_refuse)
    except ValueError:
        return MALFORMED
    return None


def first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members, the first value of a key given twice (json's object_pairs_hook)."""
    record: dict[str, Any] = {}
    for key, value in pairs:
        record.setdefault(key, value)
    return record


def first_values(line: bytes, keys: list[bytes]) -> dict[str, Any] | None:
    """The line's object with the first value of each key given twice, when one of `keys`
    (quoted) appears more than once in it; None when none does (orjson's reading stands)."""
    if not any(line.count(key) > 1 for key in keys):
        return None
    record = json.loads(line, object_pairs_hook=first_wins)
    return record if isinstance(record, dict) else None
