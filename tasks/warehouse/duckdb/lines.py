"""Newline-delimited JSON files read as bounded batches of lines, for staging inside DuckDB.

Memory stays flat whatever the input: a file is read READ_BYTES at a time (decompressed when its
name ends in .gz), cut after its last line break, and its lines handed on as Arrow record
batches, BATCH_LINES of them (BATCH_BYTES at most) at a time; only a partial last line is carried
to the next read. A line's end is found by bytes.find (memchr), and its UTF-8 checked by Arrow's
vectorised validation of the whole read; only a read with a fault is looked at line by line.

A fault in the bytes is a line's reason, never a failed run: every line comes out with its file,
its number and either its text or its fault (invalid UTF-8, longer than MAX_LINE_BYTES, a corrupt
gzip stream), the raw bytes kept escaped; a binary file is one fault at line 0.
"""

from __future__ import annotations

import gzip
import itertools
import mmap
import queue
import threading
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from tasks.source.files import is_gzipped
from tasks.warehouse.duckdb.records import (
    SNIFF_BYTES,
    binary_reason,
    escaped,
    utf8_fault,
)
from tasks.warehouse.gzipped import GZIP_ERRORS, corrupt_gzip_reason
from tasks.warehouse.json_text import json_fault, suspect, suspect_file, suspect_lines

# Bytes read from a file at a time: one Arrow record batch of lines, a unit DuckDB scans in
# parallel with the others.
READ_BYTES = 4 * 2**20
# Lines staged at a time (two of DuckDB's row groups): about 85 MB of events.
BATCH_LINES = 2 * 122_880
# Bytes of lines staged at a time at most, however long the lines: what bounds staging's memory.
BATCH_BYTES = 256 * 2**20
# Redshift's COPY takes a JSON record of at most 4 MB: a longer line is a reject on both.
MAX_LINE_BYTES = 4 * 2**20
LINES_SCHEMA = pa.schema(
    [
        ("file", pa.int32()),
        ("line_number", pa.int64()),
        # A line's text with its line break, or its escaped bytes when it has a fault.
        ("line", pa.large_string()),
        ("fault", pa.string()),
    ]
)


@dataclass(frozen=True)
class FileToRead:
    """A file of the run: its index among the run's files, its name, and its local copy."""

    index: int
    name: str
    path: str


def readable_whole(file: FileToRead) -> bool:
    """Whether DuckDB's read_json may stage the file whole: JSON text (not gzipped, no NUL byte
    or gzip data at its head), no line longer than MAX_LINE_BYTES, no vertical tab or form feed
    (which read_json, unlike JSON, takes for white space around a line's text) and nothing else
    read_json would take that JSON does not (json_text.suspect_file), under a path that
    read_json takes as it is (no glob pattern). The file is mapped, not read: the last line break
    within each MAX_LINE_BYTES is found from the end of that span, a few bytes a line."""
    if is_gzipped(file.name) or any(c in file.path for c in "*?[]{}\\"):
        return False
    with open(file.path, "rb") as stream:
        try:
            content = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file
            return False
    with content:
        if (
            b"\0" in content[:SNIFF_BYTES]
            or binary_reason(file.name, content[:SNIFF_BYTES])
            or any(content.find(space) >= 0 for space in (b"\x0b", b"\x0c"))
            or suspect_file(content)
        ):
            return False
        start, size = 0, len(content)
        while size - start > MAX_LINE_BYTES:
            end = content.rfind(b"\n", start, start + MAX_LINE_BYTES + 1)
            if end < 0:
                return False
            start = end + 1
    return True


def line_batches(
    files: list[FileToRead], batch_lines: int = BATCH_LINES, batch_bytes: int = BATCH_BYTES
) -> Iterator[pa.Table]:
    """The files' lines (LINES_SCHEMA) in file and line order, `batch_lines` at a time, or
    fewer when they reach `batch_bytes` first."""
    pending: list[pa.RecordBatch] = []
    count = size = 0
    for file in files:
        for batch in _file_lines(file):
            while batch.num_rows:
                head, batch = batch.slice(0, batch_lines - count), batch.slice(batch_lines - count)
                pending.append(head)
                count, size = count + head.num_rows, size + head.nbytes
                if count >= batch_lines or size >= batch_bytes:
                    yield pa.Table.from_batches(pending, LINES_SCHEMA)
                    pending, count, size = [], 0, 0
    if pending:
        yield pa.Table.from_batches(pending, LINES_SCHEMA)


T = TypeVar("T")


def read_ahead(items: Iterator[T]) -> Iterator[T]:
    """The items, the next one produced in a thread while the caller works on this one (reading
    and cutting lines overlaps DuckDB's parsing, which releases the GIL); one item ahead at most,
    so memory stays bounded. The producer's exception is raised in the caller."""
    handoff: queue.Queue = queue.Queue(maxsize=1)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        handoff.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handoff.put((done, None))
        except BaseException as error:
            handoff.put((done, error))

    producer = threading.Thread(target=produce, name="read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            item, error = handoff.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while producer.is_alive():  # unblock a producer waiting to hand over an item
            try:
                handoff.get_nowait()
            except queue.Empty:
                producer.join(timeout=0.1)


def _blocks(file: FileToRead) -> Iterator[bytes]:
    """A file's content, READ_BYTES at a time (decompressed when its name ends in .gz). A gzip
    stream is decompressed a piece at a time, so that what came before a break is not lost."""
    if not is_gzipped(file.name):
        with open(file.path, "rb") as stream:
            while block := stream.read(READ_BYTES):
                yield block
        return
    pieces: list[bytes] = []
    size = 0
    with gzip.open(file.path, "rb") as stream:
        try:
            while piece := stream.read1(READ_BYTES):
                pieces.append(piece)
                size += len(piece)
                if size >= READ_BYTES:
                    yield b"".join(pieces)
                    pieces, size = [], 0
        except GZIP_ERRORS:
            if pieces:
                yield b"".join(pieces)
            raise
    if pieces:
        yield b"".join(pieces)


def _file_lines(file: FileToRead) -> Iterator[pa.RecordBatch]:
    """One file's lines, a read at a time; a corrupt gzip stream ends the file with a fault at
    the line where it broke (line 0 when it was not gzip data at all)."""
    reader = _LineReader(file)
    blocks = _blocks(file)
    try:
        for block in blocks:
            if not reader.read and (reason := binary_reason(file.name, block)):
                yield _faults(file.index, [(0, reason, escaped(block[:64]))])
                blocks.close()
                return
            yield from reader.take(block)
    except GZIP_ERRORS as error:
        if not is_gzipped(file.name):
            raise
        yield reader.broken(corrupt_gzip_reason(error))
        return
    yield from reader.finish()


class _LineReader:
    """Cuts a file's blocks into whole lines, numbering them; carries the partial last line."""

    def __init__(self, file: FileToRead) -> None:
        self.file = file
        self.number = 1  # the number of the next line
        self.tail = b""
        self.skipping = False  # inside a line already rejected as too long
        self.read = False  # whether any block was taken

    def take(self, block: bytes) -> Iterator[pa.RecordBatch]:
        """The whole lines that this block completes."""
        self.read = True
        data = self.tail + block if self.tail else block
        if self.skipping:
            end = data.find(b"\n")
            if end < 0:
                self.tail = b""
                return
            data, self.skipping = data[end + 1 :], False
            self.number += 1
        cut = data.rfind(b"\n") + 1
        if cut:
            yield self._lines(data, cut)
        self.tail = data[cut:]
        if len(self.tail) > MAX_LINE_BYTES:
            yield _faults(self.file.index, [(self.number, _too_long(), escaped(self.tail))])
            self.tail, self.skipping = b"", True

    def finish(self) -> Iterator[pa.RecordBatch]:
        """The last line, when the file does not end with a line break."""
        if self.tail and not self.skipping:
            yield self._lines(self.tail + b"\n", len(self.tail) + 1)

    def broken(self, reason: str) -> pa.RecordBatch:
        """The fault of a stream that broke off: at the line it broke in, its bytes so far (at
        line 0 when nothing at all could be read)."""
        number = self.number if self.read else 0
        return _faults(self.file.index, [(number, reason, escaped(self.tail))])

    def _lines(self, data: bytes, cut: int) -> pa.RecordBatch:
        """The lines of data[:cut] (which ends with a line break), numbered on from self.number."""
        offsets = _line_offsets(data, cut)
        count = len(offsets) - 1
        first, self.number = self.number, self.number + count
        buffer = pa.py_buffer(data).slice(0, cut)
        lines = pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets), buffer)
        ends = pa.Array.from_buffers(pa.int64(), count + 1, [None, pa.py_buffer(offsets)])
        longest = pc.max(pc.subtract(ends[1:], ends[:-1])).as_py()
        try:
            if longest > MAX_LINE_BYTES + 1:
                raise ValueError("a line is too long")
            lines.validate(full=True)  # UTF-8, in Arrow's vectorised check
        except (pa.ArrowInvalid, ValueError):
            return _checked_lines(self.file.index, first, data, offsets)
        numbers = array("q", range(first, first + count))
        return pa.RecordBatch.from_arrays(
            [
                pc.fill_null(pa.nulls(count, pa.int32()), self.file.index),
                pa.Array.from_buffers(pa.int64(), count, [None, pa.py_buffer(numbers)]),
                lines,
                _json_faults(lines),
            ],
            schema=LINES_SCHEMA,
        )


def _json_faults(lines: pa.Array) -> pa.Array:
    """Each line's fault as JSON text (tasks/warehouse/json_text.py), null for most: only the
    lines `suspect_lines` flags are read again."""
    flagged = pc.indices_nonzero(suspect_lines(lines)).to_pylist()
    if not flagged:
        return pa.nulls(len(lines), pa.string())
    faults: list[str | None] = [None] * len(lines)
    for n in flagged:
        faults[n] = json_fault(lines[n].as_py())
    return pa.array(faults, pa.string())


def _line_offsets(data: bytes, cut: int) -> array[int]:
    """Where each line of data[:cut] starts, and where the last one ends (at cut)."""
    offsets = array("q", [0])
    find, append = data.find, offsets.append
    end = find(b"\n", 0, cut) + 1
    while end:  # bytes.find is memchr: faster than any vectorised kernel at hand here
        append(end)
        end = find(b"\n", end, cut) + 1
    return offsets


def _checked_lines(index: int, first: int, data: bytes, offsets: array[int]) -> pa.RecordBatch:
    """Lines checked one by one (a block where Arrow found a fault): each good line's text, and
    each bad line's fault and escaped bytes."""
    texts, faults = [], []
    for start, end in itertools.pairwise(offsets):
        line = data[start:end]
        fault = _too_long() if len(line.rstrip(b"\n")) > MAX_LINE_BYTES else utf8_fault(line)
        if fault is None and suspect(line):
            fault = json_fault(line)
        texts.append(line.decode() if fault is None else escaped(line))
        faults.append(fault)
    count = len(texts)
    return pa.RecordBatch.from_arrays(
        [
            pa.array([index] * count, pa.int32()),
            pa.array(range(first, first + count), pa.int64()),
            pa.array(texts, pa.large_string()),
            pa.array(faults, pa.string()),
        ],
        schema=LINES_SCHEMA,
    )


def _too_long() -> str:
    return f"line too long: more than {MAX_LINE_BYTES} bytes"


def _faults(index: int, faults: list[tuple[int, str, str]]) -> pa.RecordBatch:
    """Lines that are faults only: (line number, reason, escaped bytes)."""
    numbers, reasons, raws = zip(*faults, strict=True)
    return pa.RecordBatch.from_arrays(
        [
            pa.array([index] * len(faults), pa.int32()),
            pa.array(numbers, pa.int64()),
            pa.array(raws, pa.large_string()),
            pa.array(reasons, pa.string()),
        ],
        schema=LINES_SCHEMA,
    )
