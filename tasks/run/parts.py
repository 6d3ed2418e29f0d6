"""A run in parts: a large run stages and transforms its event files a part at a time, all in
its one transaction, so that what one part stages fits in the warehouse's memory.

DuckDB keeps a run's staged rows in memory up to its memory_limit and spills the rest to disk,
where reading them back costs many times more (README's benchmark has the figures). Loads are
incremental and order-free (the design's contract), so staging and transforming the days part
after part gives the tables that staging them all at once gives, as runs of those days one
after another would. A part holds whole days (every event file of a day in the same part: the
plays sharing a key are in one day's file, which sql/transform/08_songplays.sql relies on) and
the first part every song file of the run. A warehouse that stages a run best in one go
(Redshift's COPY spreads it over the nodes) has no part size: its run is one part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from tasks.run.transform import TableChange
from tasks.source.files import RunFiles, event_file_date
from tasks.warehouse.protocol import REJECT_SAMPLES, StageReport, StageResult


def split_run(files: RunFiles, part_bytes: int | None) -> list[RunFiles]:
    """The run's files in parts, each with at most `part_bytes` of event files (a day larger
    than that makes a part of its own), days in order; the song files go with the first part.
    Days holding files of the same size go in the same part, whatever their sizes: staging
    rejects a file with the same content as another of its run as a duplicate, and only files
    of one size can be that. One part, the files themselves, when `part_bytes` is None or they
    all fit."""
    if part_bytes is None:
        return [files]
    parts: list[list[str]] = []
    size = 0
    for group in _day_groups(files):
        group_bytes = sum(_size(files, name) for name in group)
        if not parts or size + group_bytes > part_bytes:
            parts.append([])
            size = 0
        parts[-1] += group
        size += group_bytes
    if len(parts) <= 1:
        return [files]
    return [
        replace(files, event_files=events, song_files=files.song_files if n == 0 else [])
        for n, events in enumerate(parts)
    ]


def _day_groups(files: RunFiles) -> list[list[str]]:
    """The event files by day, in order of days; days with files of one (non-zero) size joined
    in one group, at the place of its first day."""
    days: dict[date | None, list[str]] = {}
    for name in files.event_files:
        days.setdefault(event_file_date(name), []).append(name)
    order = sorted(days, key=_day_order)
    earliest = {day: day for day in order}  # the first day of each day's group, once found

    def first(day: date | None) -> date | None:
        while earliest[day] != day:
            day = earliest[day]
        return day

    first_of_size: dict[int, date | None] = {}
    for day in order:
        for name in days[day]:
            if size := _size(files, name):
                one, other = first(first_of_size.setdefault(size, day)), first(day)
                later, sooner = sorted((one, other), key=_day_order, reverse=True)
                earliest[later] = sooner
    groups: dict[date | None, list[str]] = {}
    for day in order:
        groups.setdefault(first(day), []).extend(days[day])
    return list(groups.values())


def _day_order(day: date | None) -> tuple[bool, date]:
    """Days in order (a file without one first)."""
    return day is not None, day or date.min


def _size(files: RunFiles, name: str) -> int:
    """A file's size as listed (0 when the listing gave none)."""
    version = files.versions.get(name)
    return version.size if version else 0


def merge_staged(parts: Sequence[StageResult]) -> StageResult:
    """What the parts' staging did together."""
    return StageResult(
        _merge_reports([p.events for p in parts]), _merge_reports([p.songs for p in parts])
    )


def _merge_reports(reports: list[StageReport]) -> StageReport:
    """One table's staging over the parts: files, rows, rejects and seconds added up, the
    first reject samples by file and line, the records of each file."""
    if len(reports) == 1:
        return reports[0]
    samples = sorted(
        (s for r in reports for s in r.reject_samples), key=lambda s: (s.source_file, s.line_number)
    )
    counted = [r.records_by_file for r in reports if r.records_by_file is not None]
    return StageReport(
        reports[0].table,
        sum(r.files for r in reports),
        sum(r.rows for r in reports),
        sum(r.rejects for r in reports),
        sum(r.seconds for r in reports),
        samples[:REJECT_SAMPLES],
        {name: n for by_file in counted for name, n in by_file.items()} if counted else None,
    )


def merge_changes(parts: Sequence[list[TableChange]]) -> list[TableChange]:
    """What the parts' transforms did to each table, added up (a row written again by a later
    part counts in both), tables in the order they ran."""
    merged: dict[str, TableChange] = {}
    for changes in parts:
        for change in changes:
            total = merged.setdefault(change.table, TableChange(change.table, 0, 0, 0.0))
            total.deleted += change.deleted
            total.inserted += change.inserted
            total.seconds += change.seconds
    return list(merged.values())
