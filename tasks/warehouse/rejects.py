"""Whole-file rejects, the same on every warehouse: an empty file, or a file with the content of
another of the run."""

from __future__ import annotations

from collections.abc import Mapping

from tasks.warehouse.protocol import Reject


def file_rejects(files: list[str], digests: Mapping[str, str | bytes | None]) -> list[Reject]:
    """Whole-file problems: empty files (digest None: no bytes at all, what an S3 listing shows
    as size 0; a file of blank lines holds no record and no reject, as blank lines anywhere),
    and files with the same content (the same digest, or the same bytes) as an earlier one;
    their records are not staged (a duplicate's would be loaded twice)."""
    rejects = []
    seen: dict[str | bytes, str] = {}
    for name in files:
        digest = digests.get(name)
        if digest is None:
            rejects.append(Reject(name, 0, "empty file"))
            continue
        first = seen.setdefault(digest, name)
        if first != name:
            rejects.append(Reject(name, 0, f"duplicate file: same content as {first}"))
    return rejects
