"""Staging on Redshift by COPY from S3.

Each run writes a manifest naming exactly its files (the song files combined into a few
objects first, each record written with its file's name: song_bundles.py beside this), and
the JSONPaths document generated from the staging table's model, beside the data in S3; COPY
loads through the manifest with the block's IAM role, then ANALYZE updates the staging table's
statistics. The rows Redshift rejected are read back from its load-error log, traced to their
source files, and kept in load_rejects like DuckDB's.
"""

from __future__ import annotations

import time as clock
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Table, and_, delete, func, not_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy_redshift.dialect import RedshiftDialect_redshift_connector

from sql.fields import json_fields, jsonpaths
from tasks.common.progress import Progress
from tasks.source.s3 import S3Source
from tasks.warehouse.protocol import REJECT_SAMPLES, Reject, StageReport
from tasks.warehouse.redshift.gzip_breaks import check_gzipped
from tasks.warehouse.redshift.load_errors import (
    LoadFailed,
    copy_errors,
    copy_started,
    fetch_dbapi,
    fetch_sqlalchemy,
    traced_to_origins,
)
from tasks.warehouse.redshift.song_bundles import (
    CopyFiles,
    apart_as_logged,
    by_compression,
    combine_song_files,
    delete_combined,
)
from tasks.warehouse.rejects import file_rejects
from tasks.warehouse.staging import insert_rejects, reset_staging


class CopyingWarehouse(Protocol):
    """What COPY staging reads of the warehouse block (warehouse.py beside this)."""

    iam_role_arn: str
    region: str
    max_errors: int
    load_errors_view: str

    def copy(self, conn: Connection, statement: str) -> None:
        """Run one COPY statement in the connection's transaction."""
        ...


# Manifests and JSONPaths are written beside the data, where the COPY role may read.
CONTROL_PREFIX = "_sparkify"
# The block's iam_role_arn that makes COPY use the cluster's default IAM role (IAM_ROLE default).
DEFAULT_IAM_ROLE = "default"


def redshift_literal(value: str) -> str:
    """A Redshift string literal: backslashes and single quotes doubled, since Redshift treats
    a backslash in a literal as an escape (as its QUOTE_LITERAL function does)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def copy_statement(
    target: Table,
    manifest_uri: str,
    jsonpaths_uri: str,
    warehouse: CopyingWarehouse,
    *,
    gzip: bool = False,
) -> str:
    """The exact COPY text for a staging table. Redshift refuses bind parameters inside COPY,
    so values are written as literals (`redshift_literal`), the table and columns as quoted
    identifiers of the model. IAM_ROLE is the documented form of role authorisation: the
    block's role ARN, or the keyword `default` (the cluster's default role). No STATUPDATE:
    with it, ON or OFF, COPY needs the table's owner or a superuser, without it only INSERT
    (the ANALYZE after the COPYs updates the statistics); MAXERROR is the block's. No
    TRUNCATECOLUMNS: a value longer than its column is a rejected record, as on DuckDB, not a
    value cut short. GZIP says every file of the manifest is gzipped (it applies to all of a
    COPY's files)."""
    quote = RedshiftDialect_redshift_connector().identifier_preparer.quote
    columns = ", ".join(quote(c.name) for c in target.columns)
    role = warehouse.iam_role_arn
    return "\n".join(
        [
            f"COPY {quote(target.name)} ({columns})",
            f"FROM {redshift_literal(manifest_uri)}",
            f"IAM_ROLE {'default' if role == DEFAULT_IAM_ROLE else redshift_literal(role)}",
            f"FORMAT AS JSON {redshift_literal(jsonpaths_uri)}",
            "MANIFEST",
            *(["GZIP"] if gzip else []),
            "TIMEFORMAT 'epochmillisecs'",
            "COMPUPDATE OFF",
            f"MAXERROR {int(warehouse.max_errors)}",
            f"REGION {redshift_literal(warehouse.region)}",
        ]
    )


def manifest(files: list[str]) -> dict[str, Any]:
    """A COPY manifest naming exactly these files; a missing one fails the COPY."""
    return {"entries": [{"url": uri, "mandatory": True} for uri in files]}


def _reject_bad_patterns(
    conn: Connection, target: Table, manifest_uri: str
) -> tuple[int, list[Reject]]:
    """Remove staged rows whose text breaks a column's pattern (a userId that is not digits would
    fail the transform's cast) or that lack a value needed there (a NextSong event without a
    userId); COPY cannot check either. Recorded per column against the manifest, since COPY
    keeps no file or line for loaded rows. Returns the rows removed and the rejects."""
    removed, rejects = 0, list[Reject]()
    for f in json_fields(target):
        col = target.c[f.column]
        checks = []
        if f.pattern:
            bad = and_(col.is_not(None), not_(col.regexp_match(f"^({f.pattern})$")))
            checks.append((bad, f"bad value for {f.field}: {f.pattern_says}"))
        if f.needed_when:
            other, value = f.needed_when
            # Trailing blanks aside, as the transforms compare (Redshift ignores them anyway).
            other_text = func.rtrim(target.c[other], " ")
            lacking = and_(other_text == value, func.coalesce(col, "") == "")
            checks.append((lacking, f.needed_says))
        for bad, says in checks:
            counted = select(func.count()).select_from(target).where(bad)
            count = int(conn.execute(counted).scalar_one())
            if count:
                conn.execute(delete(target).where(bad))
                rejects.append(Reject(manifest_uri, 0, f"{says} ({count} records)"))
                removed += count
    return removed, rejects


def stage_by_copy(
    conn: Connection,
    source: S3Source,
    target: Table,
    files: list[str],
    at: datetime,
    warehouse: CopyingWarehouse,
    *,
    combine: bool = False,
) -> StageReport:
    """Reset a staging table (a new one: reset_staging), COPY the run's
    files through a manifest, plain files and gzipped ones apart (GZIP holds for all of a COPY's
    files), with `combine` the files first combined into few objects, each record with its file
    (song_bundles.py), in the connection's transaction; then ANALYZE the table and keep the
    rejected records in load_rejects."""
    started = clock.perf_counter()
    reset_staging(conn, target, files, recreate=True)
    # Whole-file problems, as DuckDB's staging finds them: an empty file, or one with the same
    # content as an earlier one (whose records COPY would load twice) is a reject, not loaded.
    rejects = file_rejects(files, source.content_digests(files))
    control = source.key(CONTROL_PREFIX)
    stamp = at.strftime("%Y%m%dT%H%M%S%f")
    # A gzipped file that breaks off would fail the whole COPY: a reject at the break, and an
    # event file's whole lines before it loaded from a plain object (gzip_breaks.py).
    whole_file_rejects = {r.source_file for r in rejects}
    whole = [uri for uri in files if uri not in whole_file_rejects]
    salvage_prefix = f"{control}/salvaged/{stamp}/{target.name}"
    checked = check_gzipped(source, whole, salvage_prefix, salvage=not combine)
    rejects += checked.rejects
    skipped = whole_file_rejects | checked.broken()
    loadable = [uri for uri in files if uri not in skipped]
    rows, counted = 0, len(rejects)
    if loadable or checked.salvaged:
        paths_uri = source.put_json(f"{control}/jsonpaths/{target.name}.json", jsonpaths(target))
    manifests = f"{control}/manifests/{stamp}/{target.name}"
    title = f"staging {target.name.removeprefix('staging_')}"
    with Progress(title, len(files), "files") as progress:
        progress.advance(len(skipped))
        batches = checked.with_salvaged(
            combine_song_files(source, loadable, f"{control}/bundles/{stamp}/{target.name}")
            if combine
            else by_compression(loadable)
        )
        for batch in apart_as_logged(batches):
            if batch.files:  # none when every file held only blank lines
                manifest_key = manifests + (".gzip.manifest" if batch.gzipped else ".manifest")
                manifest_uri = source.put_json(manifest_key, manifest(batch.files))
                try:
                    loaded, copy_rejects = _copy_files(
                        conn, target, manifest_uri, paths_uri, warehouse, batch
                    )
                finally:
                    delete_combined(source, batch)
                removed, pattern_rejects = _reject_bad_patterns(conn, target, manifest_uri)
                rows += loaded - removed
                counted += len(copy_rejects) + removed
                rejects += copy_rejects + pattern_rejects
            progress.advance(batch.run_files(), note=batch.describe())
    analyze(conn, target)
    insert_rejects(conn, rejects, at)
    return StageReport(
        target.name,
        len(files),
        rows,
        counted,
        clock.perf_counter() - started,
        [replace(r, raw_line=None) for r in rejects[:REJECT_SAMPLES]],
    )


def analyze(conn: Connection, target: Table) -> None:
    """Update the planner's statistics of a staging table just loaded, which the transforms
    join and group next: a COPY without STATUPDATE updates them only into an empty table, so
    not after a second COPY or the rows removed after it. ANALYZE may run inside the run's
    transaction (VACUUM may not); it needs the table's owner (the flows' user, who created
    it), a superuser or the ANALYZE privilege."""
    conn.exec_driver_sql(f"analyze {conn.dialect.identifier_preparer.format_table(target)}")


def _copy_files(
    conn: Connection,
    target: Table,
    manifest_uri: str,
    paths_uri: str,
    warehouse: CopyingWarehouse,
    batch: CopyFiles,
) -> tuple[int, list[Reject]]:
    """One COPY of a manifest's files (all gzipped, or none): the rows it loaded and the records
    it rejected, traced from combined objects to the run's files. A failed COPY rolls the
    session back and raises LoadFailed with its rejects."""
    view, files, fetch = warehouse.load_errors_view, batch.files, fetch_sqlalchemy(conn)
    since = copy_started(fetch)
    try:
        statement = copy_statement(target, manifest_uri, paths_uri, warehouse, gzip=batch.gzipped)
        warehouse.copy(conn, statement)
    except DBAPIError as error:
        # More rejects than MAXERROR (or an unreadable file) fail the COPY. Roll the session back
        # and read what the failed load logged in it, so the run says which records and why;
        # SQLAlchemy's transaction is over, so this goes through the DB-API connection.
        conn.connection.dbapi_connection.rollback()
        rejects = copy_errors(fetch_dbapi(conn), view, since, files)
        raise LoadFailed(target.name, traced_to_origins(rejects, batch.origins), error) from error
    rows = int(conn.execute(select(func.pg_last_copy_count())).scalar_one())
    return rows, traced_to_origins(copy_errors(fetch, view, since, files), batch.origins)
