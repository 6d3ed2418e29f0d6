"""Whole-file rejects, the same on every warehouse: an empty file, or a file with the content of
another of the run; and, where the run reads files from a file system, a file it listed but
cannot read."""

from __future__ import annotations

import errno
from collections.abc import Mapping

from sql import model
from tasks.warehouse.protocol import Reject

# Bytes a reason may take: load_rejects.reason's width (Redshift counts VARCHAR widths in bytes).
REASON_BYTES: int = model.load_rejects.c.reason.type.length
CUT = "…"


def fit_reason(reason: str, limit: int = REASON_BYTES) -> str:
    """A reason within `limit` UTF-8 bytes: as it is, or cut at a character boundary and ended
    with "…" (a whole-file reason names a file, whose S3 URI may take 1,093 bytes)."""
    data = reason.encode()
    if len(data) <= limit:
        return reason
    return data[: limit - len(CUT.encode())].decode("utf-8", "ignore") + CUT


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
            rejects.append(Reject(name, 0, fit_reason(f"duplicate file: same content as {first}")))
    return rejects


def unreadable_reason(error: OSError) -> str:
    """Why a file the run listed cannot be read, as its whole-file reject says."""
    if isinstance(error, FileNotFoundError):
        return "file not found: deleted after the run listed it, or a dangling symbolic link"
    if error.errno == errno.ELOOP:
        return "unreadable file: a loop of symbolic links"
    return fit_reason(f"unreadable file: {error.strerror or type(error).__name__}")


def unreadable_files(files: list[str], paths: Mapping[str, str]) -> list[Reject]:
    """The files whose copy (`paths[name]`) cannot be opened for reading, each a whole-file
    reject with its reason: a file-system fault costs that file, never the run."""
    rejects = []
    for name in files:
        try:
            with open(paths[name], "rb"):
                pass
        except OSError as error:
            rejects.append(Reject(name, 0, unreadable_reason(error)))
    return rejects
