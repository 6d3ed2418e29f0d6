"""Gzipped files that break off, found before COPY: Redshift's COPY fails whole on one (its GZIP
option decompresses every file of the COPY, and a failed COPY ends the run's transaction), where
DuckDB's staging keeps what came before the break (tasks/warehouse/gzipped.py).

Each gzipped file of a COPY is read through once, streaming, several at a time, and nothing of
it is kept. A file that breaks off is left out of the COPY and is a reject at the line it broke
in; an event file is read again and its whole lines before the break are written,
decompressed, to a plain object under the control prefix, which the plain files' COPY loads
with the lines traced back to the file (as combined song objects are), and which is deleted
after that COPY. A song file is one record: it is a
reject as a whole, as on DuckDB."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from typing import overload

from tasks.source.files import is_gzipped
from tasks.source.s3 import S3Source
from tasks.warehouse.gzipped import decompress_to
from tasks.warehouse.protocol import MAX_RAW_LINE, Reject
from tasks.warehouse.redshift.song_bundles import CopyFiles

# Files read at once (each a download).
CHECK_WORKERS = 8
# Decompressed bytes a check keeps in memory before its spool moves to a temporary file.
SPOOL_BYTES = 8 << 20


class LineOrigins(Sequence[tuple[str, int]]):
    """Where the lines of a salvaged object came from: line n of it is line n of the file."""

    def __init__(self, file: str, lines: int) -> None:
        self.file, self.lines = file, lines

    def __len__(self) -> int:
        return self.lines

    @overload
    def __getitem__(self, index: int) -> tuple[str, int]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[str, int]]: ...
    def __getitem__(self, index: int | slice) -> tuple[str, int] | Sequence[tuple[str, int]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.lines))]
        if not -self.lines <= index < self.lines:
            raise IndexError(index)
        return self.file, index % self.lines + 1


@dataclass
class GzipChecked:
    """What the check found: a reject per file that broke off, and the plain objects holding
    the whole lines before the breaks (with where each line came from)."""

    rejects: list[Reject] = field(default_factory=list)
    salvaged: dict[str, LineOrigins] = field(default_factory=dict)

    def broken(self) -> set[str]:
        """The files that broke off."""
        return {r.source_file for r in self.rejects}

    def with_salvaged(self, batches: list[CopyFiles]) -> list[CopyFiles]:
        """The COPYs with the salvaged objects added to the plain files' one (or as one)."""
        if not self.salvaged:
            return batches
        plain = next((b for b in batches if not b.gzipped), None)
        rest = [b for b in batches if b is not plain]
        files = (plain.files if plain else []) + list(self.salvaged)
        origins = {**(plain.origins if plain else {}), **self.salvaged}
        # The broken files were counted with the rejects, so `combined` does not count them.
        return [CopyFiles(files, origins, plain.combined if plain else 0), *rest]


def check_gzipped(source: S3Source, files: list[str], prefix: str, *, salvage: bool) -> GzipChecked:
    """Read every gzipped file of `files` through; with `salvage`, write the whole lines of
    each that breaks off to an object `prefix.NNNN.json`, else reject such a file whole."""
    gzipped = [name for name in files if is_gzipped(name)]
    client = source.client()

    def check(index: int, name: str) -> tuple[Reject, tuple[str, LineOrigins] | None] | None:
        with closing(source.open(name)) as stream:
            broken = decompress_to(stream)
        if broken is None:
            return None
        if not salvage:
            return Reject(name, 0, broken.reason), None
        raw = broken.tail.decode("utf-8", "backslashreplace").rstrip("\r\n")
        reject = Reject(name, broken.line_number, broken.reason, raw[:MAX_RAW_LINE])
        if not broken.whole_lines:
            return reject, None
        # Rare: the file is read a second time, into a spool, only when it broke off.
        with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as sink:
            with closing(source.open(name)) as stream:
                decompress_to(stream, sink)
            sink.truncate(broken.whole_bytes)
            sink.seek(0)
            key = f"{prefix}.{index:04d}.json"
            client.upload_fileobj(sink, source.bucket, key)
        return reject, (source.uri(key), LineOrigins(name, broken.whole_lines))

    with ThreadPoolExecutor(max_workers=CHECK_WORKERS) as pool:
        found = [f for f in pool.map(check, range(len(gzipped)), gzipped) if f is not None]
    return GzipChecked(
        [reject for reject, _ in found], dict(object for _, object in found if object)
    )
