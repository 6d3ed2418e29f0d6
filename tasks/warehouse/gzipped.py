"""Gzipped files that do not decompress to their end, the same on every warehouse: the whole
lines before the break are records like any others, the line it broke in is a reject with the
decompression error (line 0, the whole file, when nothing decompressed at all).

DuckDB's staging finds the break as it reads its copies (duckdb/lines.py). Redshift's COPY would
fail whole on such a file (its GZIP option decompresses every file of the COPY), so the Redshift
path reads each gzipped file through once before its COPY (redshift/gzip_breaks.py)."""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from typing import BinaryIO

# What decompression raises on a truncated or corrupt .gz file (BadGzipFile is an OSError).
GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)
# Decompressed bytes read at a time while a file is checked.
CHECK_CHUNK = 1 << 20


def corrupt_gzip_reason(error: BaseException) -> str:
    """The reject reason of a gzipped file that does not decompress."""
    return f"corrupt gzip data: {error}"


@dataclass(frozen=True)
class GzipBreak:
    """Where a gzip stream broke off: the reason, the number of whole lines before the break,
    the line it broke in (0 when nothing decompressed) and that line's bytes so far."""

    reason: str
    whole_lines: int
    line_number: int
    tail: bytes
    whole_bytes: int


def decompress_to(stream: BinaryIO, sink: BinaryIO | None = None) -> GzipBreak | None:
    """Decompress a gzip stream, into `sink` if given, CHECK_CHUNK bytes at a time (memory stays
    bounded whatever the file's size); None when it decompresses to its end, else where it
    broke (the sink then holds whole_bytes of whole lines, then the broken line's start)."""
    produced = lines = whole = 0
    last = b""
    try:
        with gzip.GzipFile(fileobj=stream) as file:
            while piece := file.read1(CHECK_CHUNK):
                if sink is not None:
                    sink.write(piece)
                if (newline := piece.rfind(b"\n")) >= 0:
                    lines += piece.count(b"\n")
                    whole = produced + newline + 1
                    last = piece[newline + 1 :]
                else:
                    last = (last + piece)[-CHECK_CHUNK:]
                produced += len(piece)
    except GZIP_ERRORS as error:
        number = lines + 1 if produced else 0
        return GzipBreak(corrupt_gzip_reason(error), lines, number, last, whole)
    return None
