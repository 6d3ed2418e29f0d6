"""Redshift's COPY from JSON, emulated over PostgreSQL for tests (tests/postgres_redshift.py).

PostgreSQL has no COPY from S3, so this reads the statement the product sends and does what
Redshift's documentation says that COPY does: read the manifest (or list the prefix) and the
JSONPaths document from S3, map each JSON record through the paths to the target columns in
order, convert each value to its column's type as declared in the database, load the good
records and log the rejected ones in sys_load_error_detail and stl_load_errors with the load
error reference's codes (tests/redshift_error_log.py: SYS's under query ids of its own, file
names cut to 256 bytes). A path that is not in a record loads NULL; NULL into a NOT NULL column, a
value that does not convert, a string longer than its column (in bytes, as Redshift counts VARCHAR
lengths) without TRUNCATECOLUMNS, invalid JSON and invalid UTF-8 reject the record. The load
fails when the rejects reach MAXERROR (the documented "error_count number of errors or
greater"; 0 and 1 both fail on the first error). With GZIP every file is decompressed first
(the option holds for all of a COPY's files); one that is not gzip is modelled as failing the
COPY (the documentation does not say what Redshift logs for it).

Deliberately not modelled: the IAM role (an ARN or `default`) and region (S3 is read with the
block's credentials), the ANALYZE after COPY (a statement of its own, run by PostgreSQL),
compression and statistics (COMPUPDATE, STATUPDATE), 'auto' JSON mapping, any TIMEFORMAT but
'epochmillisecs', 'epochsecs' and the default, other formats and options (refused, so a change
to the product's COPY shows up here), column types other than integers, doubles, timestamps and
VARCHAR, parallel slices and a 4 MB record limit. The load-error log is written on its own
connection and committed at once, as Redshift's system log survives a rolled-back COPY.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Double,
    Float,
    Integer,
    SmallInteger,
    String,
    column,
    func,
    inspect,
    select,
    table,
)

from tasks.source.s3 import parse_s3_uri
from tasks.warehouse.redshift.load_errors import CLOCK_FORMAT
from tasks.warehouse.staging import insert_values
from tests.redshift_error_log import log_errors

# Redshift's load error reference: the codes and descriptions this emulation uses.
ERRORS = {
    1204: "Input data exceeded the acceptable range for the data type.",
    1206: "Timestamp format is not valid.",
    1207: "Data contained a value outside of the expected range of 0-9.",
    1208: "FLOAT data type format error.",
    1213: "A field specified as NOT NULL contained no data.",
    1216: "Input line is not valid.",
    1220: "String contains invalid or unsupported UTF-8 code points.",
}
COPY_LOG_COLUMNS = ("query_id", "session_id", "rows_loaded")
INTEGER_BITS = ((SmallInteger, 16), (BigInteger, 64), (Integer, 32))
EPOCH = datetime(1970, 1, 1)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_TOKEN = re.compile(
    r"\s*(?:(?P<literal>'(?:[^'\\]|''|\\.)*')|(?P<name>\"(?:[^\"]|\"\")*\"|[A-Za-z_][\w$.]*)"
    r"|(?P<number>[0-9]+)|(?P<punct>[(),]))",
    re.S,
)
_PATH_STEP = re.compile(r"\[\s*'([^']*)'\s*\]|\[\s*\"([^\"]*)\"\s*\]|\.(\w+)|\[\s*([0-9]+)\s*\]")
_WHITESPACE = re.compile(r"\s*")


class CopyNotEmulated(Exception):
    """The statement asks for something this emulation does not model."""


class CopyFailed(Exception):
    """The whole COPY fails (a missing file, paths that do not fit the columns)."""


@dataclass
class LoadError(Exception):
    """One rejected record: a code of the load error reference, the column, a detail."""

    code: int
    column: str | None = None
    detail: str = ""

    def message(self) -> str:
        """The error message, as logged."""
        return f"{ERRORS[self.code]} {self.detail}".strip()


@dataclass
class CopyCommand:
    """What a COPY statement asks for."""

    table: str
    columns: list[str] | None
    source: str
    jsonpaths: str = ""
    manifest: bool = False
    timeformat: str | None = None
    truncate_columns: bool = False
    gzip: bool = False
    max_errors: int = 0
    ignored: dict[str, str] = field(default_factory=dict)


def _unquote(kind: str, text: str) -> str:
    if kind == "literal":  # Redshift literals: '' is a quote and a backslash escapes
        return re.sub(r"''|\\(.)", lambda m: m.group(1) or "'", text[1:-1], flags=re.S)
    if text.startswith('"'):
        return text[1:-1].replace('""', '"')
    return text.lower()


def _tokens(statement: str) -> list[tuple[str, str]]:
    text, position, tokens = statement.strip().rstrip(";"), 0, []
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise CopyNotEmulated(f"cannot read the COPY statement at {text[position:][:40]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, _unquote(kind, match.group(kind))))
        position = match.end()
    return tokens


def parse_copy(statement: str) -> CopyCommand:
    """The parts of a COPY ... FORMAT AS JSON statement that this emulation models."""
    tokens = _tokens(statement)

    def take(kind: str | None = None, word: str | None = None) -> str:
        if not tokens:
            raise CopyNotEmulated("the COPY statement ends too early")
        found_kind, value = tokens.pop(0)
        if (kind and found_kind != kind) or (word and value != word):
            raise CopyNotEmulated(f"expected {word or kind} in COPY, found {value!r}")
        return value

    def optional(word: str) -> None:
        if tokens and tokens[0] == ("name", word):
            tokens.pop(0)

    take("name", "copy")
    command = CopyCommand(take("name"), None, "")
    if tokens and tokens[0][1] == "(":
        take("punct")
        command.columns = [take("name")]
        while take("punct") == ",":
            command.columns.append(take("name"))
    take("name", "from")
    command.source = take("literal")
    while tokens:
        option = take("name")
        optional("as")
        if option == "format":
            take("name", "json")
            optional("as")
            command.jsonpaths = take("literal")
        elif option in ("manifest", "truncatecolumns", "gzip"):
            setattr(command, option.replace("columns", "_columns"), True)
        elif option == "timeformat":
            command.timeformat = take("literal")
        elif option == "maxerror":
            command.max_errors = int(take("number"))
        elif option == "iam_role":  # a role ARN, or the keyword default (the cluster's)
            by_name = bool(tokens) and tokens[0][0] == "name"
            command.ignored[option] = take("name", "default") if by_name else take("literal")
        elif option == "region":
            command.ignored[option] = take("literal")
        elif option in ("compupdate", "statupdate"):
            command.ignored[option] = take("name")
        else:
            raise CopyNotEmulated(f"COPY option {option.upper()} is not emulated")
    if not command.jsonpaths.startswith("s3://"):
        raise CopyNotEmulated("only FORMAT AS JSON 's3://…jsonpaths' is emulated")
    return command


def json_path(expression: str) -> list[str | int]:
    """The steps of a JSONPath expression in Redshift's bracket or dot notation."""
    if not expression.startswith("$"):
        raise CopyFailed(f"Invalid JSONPath format: {expression}")
    steps: list[str | int] = []
    position = 1
    while position < len(expression):
        match = _PATH_STEP.match(expression, position)
        if match is None:
            raise CopyFailed(f"Invalid JSONPath format: {expression}")
        name = next((g for g in match.groups()[:3] if g is not None), None)
        steps.append(name if name is not None else int(match.group(4)))
        position = match.end()
    return steps


def follow(record: Any, steps: list[str | int]) -> Any:
    """The value at a path, or None where the record has no such element."""
    for step in steps:
        if isinstance(step, str) and isinstance(record, dict):
            record = record.get(step)
        elif isinstance(step, int) and isinstance(record, list) and step < len(record):
            record = record[step]
        else:
            return None
    return record


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def json_records(body: bytes) -> Iterator[tuple[int, Any]]:
    """Each JSON value of a file and the number of its last line; a LoadError in its place for
    text that is not JSON (the rest of that line is skipped). Numbers stay text, as COPY
    converts text to the column's type; invalid UTF-8 stays as surrogates, to be refused."""
    text = body.decode("utf-8", "surrogateescape")
    decoder = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=_no_constant)
    position, line = 0, 1
    while True:
        start = _WHITESPACE.match(text, position).end()
        line += text.count("\n", position, start)
        if start >= len(text):
            return
        try:
            value, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):  # nested deeper than Python's parser goes
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
            value = LoadError(1216, detail="Invalid JSON.")
        line += text.count("\n", start, end)
        if not isinstance(value, dict | LoadError):
            value = LoadError(1216, detail="Not a JSON object.")
        yield line, value
        position = end


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def convert(value: Any, info: dict[str, Any], command: CopyCommand) -> Any:
    """A JSON value as its column's value (None for NULL), or LoadError."""
    name, sql_type = info["name"], info["type"]
    if value is None:
        if not info["nullable"]:
            raise LoadError(1213, name)
        return None
    text = _text(value)
    if re.search("[\udc80-\udcff]", text):
        raise LoadError(1220, name)
    if isinstance(sql_type, Integer):
        bits = next(b for kind, b in INTEGER_BITS if isinstance(sql_type, kind))
        if not _INTEGER.fullmatch(text):
            raise LoadError(1207, name, f"Value '{text[:40]}'")
        if not -(2 ** (bits - 1)) <= int(text) < 2 ** (bits - 1):
            raise LoadError(1204, name, f"Value '{text[:40]}'")
        return int(text)
    if isinstance(sql_type, Double | Float):
        if not _NUMBER.fullmatch(text):
            raise LoadError(1208, name, f"Value '{text[:40]}'")
        if math.isinf(float(text)):
            raise LoadError(1204, name, f"Value '{text[:40]}'")
        return float(text)
    if isinstance(sql_type, DateTime):
        return _timestamp(text, name, command.timeformat)
    if isinstance(sql_type, String):
        limit = sql_type.length
        if limit is not None and len(text.encode()) > limit:
            if not command.truncate_columns:
                raise LoadError(1204, name, "String length exceeds DDL length.")
            text = text.encode()[:limit].decode("utf-8", "ignore")
        return text
    raise CopyNotEmulated(f"column {name} of type {sql_type} is not emulated")


def _timestamp(text: str, name: str, timeformat: str | None) -> datetime:
    per_unit = {"epochmillisecs": "milliseconds", "epochsecs": "seconds"}
    try:
        if timeformat is None:
            return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
        if timeformat.lower() not in per_unit:
            raise CopyNotEmulated(f"TIMEFORMAT {timeformat!r} is not emulated")
        if not _INTEGER.fullmatch(text):
            raise ValueError(text)
        return EPOCH + timedelta(**{per_unit[timeformat.lower()]: int(text)})
    except (ValueError, OverflowError):
        raise LoadError(1206, name, f"Value '{text[:40]}'") from None


def _source_files(s3: Any, command: CopyCommand) -> list[str]:
    if not command.manifest:
        bucket, prefix = parse_s3_uri(command.source)
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [f"s3://{bucket}/{o['Key']}" for page in pages for o in page.get("Contents", [])]
    entries = json.loads(_read(s3, command.source))["entries"]
    files = []
    for entry in entries:
        try:
            _head(s3, entry["url"])
            files.append(entry["url"])
        except ClientError:
            if entry.get("mandatory"):
                raise CopyFailed(f"Manifest file {entry['url']} not found") from None
    return files


def _read(s3: Any, uri: str, gzipped: bool = False) -> bytes:
    bucket, key = parse_s3_uri(uri)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        return gzip.decompress(body) if gzipped else body
    except (OSError, EOFError, zlib.error) as error:
        raise CopyFailed(f"{uri} is not gzip data: {error}") from None


def _head(s3: Any, uri: str) -> None:
    bucket, key = parse_s3_uri(uri)
    s3.head_object(Bucket=bucket, Key=key)


def load_records(conn: Connection, s3: Any, command: CopyCommand) -> tuple[list, list]:
    """The rows to load and the (file, line, LoadError) of each rejected record."""
    columns = {c["name"]: c for c in inspect(conn).get_columns(command.table)}
    names = command.columns or list(columns)
    paths = [json_path(p) for p in json.loads(_read(s3, command.jsonpaths))["jsonpaths"]]
    if len(paths) != len(names):
        raise CopyFailed("Number of jsonpaths and the number of columns should match.")
    rows, rejects = [], []
    for uri in _source_files(s3, command):
        for line, record in json_records(_read(s3, uri, command.gzip)):
            try:
                if isinstance(record, LoadError):
                    raise record
                values = [follow(record, steps) for steps in paths]
                rows.append(
                    {n: convert(v, columns[n], command) for n, v in zip(names, values, strict=True)}
                )
            except LoadError as error:
                rejects.append((uri, line, error))
    return rows, rejects


def emulate_copy(conn: Connection, statement: str, s3: Any) -> None:
    """Run one COPY statement on PostgreSQL in the connection's transaction, as Redshift would:
    load the good records, log the rejected ones, fail when they reach MAXERROR."""
    command = parse_copy(statement)
    query_id = conn.execute(select(func.nextval("redshift_query_id"))).scalar_one()
    # The COPY's start in UTC, as the logs keep it, as text: any DATESTYLE reads it back.
    clock = func.to_char(func.timezone("UTC", func.statement_timestamp()), CLOCK_FORMAT)
    session_id, started = conn.execute(select(func.pg_backend_pid(), clock)).one()
    try:
        rows, rejects = load_records(conn, s3, command)
        failure = None
    except CopyFailed as error:
        rows, rejects, failure = [], [], str(error)
    limit = max(command.max_errors, 1)
    if len(rejects) >= limit:
        rejects = rejects[:limit]
        failure = f"Load into table '{command.table}' failed. Check 'sys_load_error_detail'."
    log_errors(conn, (query_id, session_id, started), rejects)
    if failure is not None:  # a real database error, so the product's error path runs
        conn.execute(select(func.redshift_copy_failed(failure)))
    if rows:
        insert_values(conn, table(command.table, *(column(n) for n in rows[0])), rows)
    copy_log = table("redshift_copy_log", *(column(n) for n in COPY_LOG_COLUMNS))
    conn.execute(
        copy_log.insert(),
        {"query_id": query_id, "session_id": session_id, "rows_loaded": len(rows)},
    )
